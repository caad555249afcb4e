"""Detect → build → export → write, for the ``detect`` and ``build`` commands.

Each phase module has one entry function with explicit inputs; this module gathers those
inputs from the command line and hands each phase's output to the next.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifecycle import descriptor as descriptor_mod
from lifecycle import paths, plugins
from lifecycle import secrets as secrets_mod
from lifecycle.buildcontainer.executor import ContainerExecutor
from lifecycle.cache import layers as cache_mod
from lifecycle.cache import receipt
from lifecycle.cache import reuse as reuse_mod
from lifecycle.cache.appindex import AppIndex
from lifecycle.descriptor import Descriptor
from lifecycle.errors import (
    BuildError,
    DockerfileBuildFailed,
    ExportError,
    LifecycleError,
    UsageError,
    os_failure,
)
from lifecycle.executor import HostExecutor, host_env
from lifecycle.image import image, reference, transports
from lifecycle.phases import publish, runbase
from lifecycle.phases.build import build
from lifecycle.phases.detect import DetectOutcome, detect
from lifecycle.phases.export import export, source_date_epoch
from lifecycle.phases.report import BuildReport, ReportedProcess

if TYPE_CHECKING:  # imported where used: a build without them never pays for the import
    from lifecycle.dockerfile.phase import Plan, Result
    from lifecycle.ecr.settings import EcrOverrides
    from lifecycle.image.transports.registry import RegistryOptions


@dataclass(frozen=True)
class Inputs:
    """What ``detect`` and ``build`` share: the app, its descriptor, the buildpacks to use."""

    app_dir: Path
    descriptor_path: Path | None = None
    buildpacks: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cache_dir: Path | None = None
    plugins: tuple[Any, ...] = ()


@dataclass(frozen=True)
class BuildInputs:
    """The rest of ``build``'s command line."""

    image: str
    run_image: str | None = None
    stack: str | None = None
    tags: tuple[str, ...] = ()
    executor: str = "auto"
    default_process: str | None = None
    platform: str | None = None
    registry: RegistryOptions | None = None
    """For ``docker://`` references (None: the defaults)."""
    network: str = "host"
    ca_bundle: str | None = None
    secrets: tuple[secrets_mod.SecretSpec, ...] = ()
    ecr: EcrOverrides | None = None
    """From the command line (None: the descriptor's settings as they are)."""
    previous_image: str | None = None
    """``--previous-image`` (None: ``image`` itself when it is a registry reference)."""
    cache_image: str | None = None
    """``--cache-image``: where the ``cache`` layers are read from and written back to."""


# fullmatch, not match with "$": a name must not end in a newline (nor be non-ASCII).
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_env(pairs: Iterable[str]) -> dict[str, str]:
    """``--env K=V`` pairs; ``--env K`` takes K from the caller's environment."""
    import os

    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not _ENV_NAME.fullmatch(key):
            raise UsageError(f"--env {pair!r}: expected NAME=VALUE with a valid variable name")
        if not sep:
            if key not in os.environ:
                raise UsageError(f"--env {key}: not set in the environment",
                                 hint=f"pass --env {key}=VALUE")
            value = os.environ[key]
        env[key] = value
    return env


def prepare(inputs: Inputs, log: logging.Logger) -> tuple[Path, Descriptor, Path]:
    """Resolve the app directory, load the descriptor, find the cache root."""
    app_dir = inputs.app_dir.resolve()
    if not app_dir.is_dir():
        raise UsageError(f"app directory {inputs.app_dir} does not exist or is not a directory")
    cache_root = inputs.cache_dir or cache_mod.default_root()
    path = descriptor_mod.find(app_dir, inputs.descriptor_path)
    desc = descriptor_mod.load(path, validated_cache=paths.CacheLayout(cache_root).descriptors,
                               root=app_dir if inputs.descriptor_path is None else None)
    log.debug("descriptor: %s", path or "none")
    return app_dir, desc, cache_root


def run_detect(inputs: Inputs, log: logging.Logger) -> tuple[Path, Descriptor, Path,
                                                              DetectOutcome]:
    """Load everything and run detect; prints what was inferred."""
    app_dir, desc, cache_root = prepare(inputs, log)
    registry = plugins.load(inputs.plugins)
    outcome = detect(app_dir, desc, registry, requested=inputs.buildpacks,
                     platform_env={**desc.build_env, **inputs.env}, log=log)
    _check_options(desc, outcome, log)
    group = ", ".join(f"{lp.id}@{lp.buildpack.version}" for lp in outcome.group)
    log.info("detected: %s", group)
    if outcome.inferred:
        for fn in outcome.functions:
            what = fn.handler or " ".join(fn.command or ())
            log.info("no descriptor functions; inferred function '%s': %s %s",
                     fn.name, fn.event, what)
    return app_dir, desc, cache_root, outcome


def _check_options(desc: Descriptor, outcome: DetectOutcome, log: logging.Logger) -> None:
    """Validate each group member's options table against its ``options_schema``."""
    members = {lp.id: lp for lp in outcome.group}
    for bp_id, options in desc.buildpack_options.items():
        bp = members.get(bp_id)
        if bp is None:
            log.warning("options for buildpack '%s' are ignored: it is not in the detected "
                        "group (%s)", bp_id, ", ".join(members))
            continue
        schema = bp.options_schema
        if schema:
            descriptor_mod.validate_options(desc.path, bp_id, options, schema)


def run_build(inputs: Inputs, options: BuildInputs, log: logging.Logger,
              observed: receipt.Observation | None = None) -> BuildReport:
    """The whole build; returns what ``build --json`` prints.

    ``observed`` is what the command saw before it started; the build's receipt is recorded
    against it (see :mod:`lifecycle.cache.receipt`).
    """
    timings: dict[str, float] = {}
    dest = reference.parse(options.image)
    tags = [reference.parse(t) for t in options.tags]
    planned = _dockerfile_plan(inputs, log)
    if planned is not None and not planned.needs_buildpacks:
        return _run_container_build(inputs, options, planned, dest, tags, log)
    started = time.monotonic()
    app_dir, desc, cache_root, outcome = run_detect(inputs, log)
    timings["detect"] = time.monotonic() - started
    registry = publish.with_ecr(options.registry, options.ecr, desc)
    per_function = (registry is not None and registry.ecr is not None
                    and registry.ecr.repository_naming == "hybridless")
    function_tags = publish.function_tags(dest, options.tags) if per_function else ()

    previous_ref = reuse_mod.previous_reference(options.previous_image, dest, per_function)
    if previous_ref is None and per_function:
        assert registry is not None  # per_function says so
        previous_ref = publish.previous_of_functions(dest, function_tags, registry, desc,
                                                     outcome.functions)
    cache_ref = reference.parse(options.cache_image) if options.cache_image else None
    if cache_ref is not None and str(cache_ref) in {str(ref) for ref in (dest, *tags)}:
        raise UsageError(f"failed to use --cache-image {cache_ref}: the image itself is "
                         "written there, and the cache image would replace it",
                         hint="give the cache image a tag of its own, such as "
                              "REPOSITORY:build-cache")
    chosen = runbase.choose_base(runbase.BaseOptions(options.run_image, options.stack,
                                                     options.platform, options.registry),
                                 desc, outcome, log)
    run_image_ref, base, stack = chosen.ref, chosen.image, chosen.stack
    reading = registry or options.registry
    group = [lp.id for lp in outcome.group]

    started = time.monotonic()
    mtime = source_date_epoch()
    phase: tuple[type[LifecycleError], str] = (BuildError, f"use the build cache {cache_root}")
    # A full disk, a read-only cache or store, a file removed mid-build: the environment, not
    # a bug, so the phase's exit code and the path instead of a traceback.
    try:
        project = cache_mod.ProjectCache(cache_root,
                                         cache_mod.project_key(desc.id, app_dir))
        with project.locked():
            phase = (BuildError, "build")
            with secrets_mod.staged(options.secrets) as secret_files, \
                    _executor(options, app_dir, project, outcome, chosen, secret_files, log) as (
                        executor, host_base):
                restoring = time.monotonic()
                reuse = reuse_mod.restore(previous_ref, cache_ref, project, group, stack,
                                          base.platform, mtime, reading, log)
                if previous_ref is not None or cache_ref is not None:
                    timings["restore"] = time.monotonic() - restoring
                built = build(app_dir, desc, outcome, project, executor=executor,
                              base_env={**host_base, **desc.build_env, **inputs.env},
                              stack=stack, mtime=mtime, log=log,
                              stack_provides=chosen.provides, secrets=secret_files)
            timings["build"] = time.monotonic() - started

            started = time.monotonic()
            phase = (ExportError, "export")
            exported = export(app_dir, desc, built, base, run_image_ref=run_image_ref,
                              blobs=project.blobs, stack=stack, mtime=mtime,
                              default_process=options.default_process, log=log,
                              user=chosen.user,
                              app_index=AppIndex(project.project_dir / "app-index.json"),
                              remote=reuse_mod.remote_blobs(project, reading),
                              executor=project.executor)
            final, layers = exported.image, exported.layers
            if planned is not None:
                timings["export"] = time.monotonic() - started
                started = time.monotonic()
                phase = (DockerfileBuildFailed, "build the Dockerfile")
                result = _dockerfile_build(
                    app_dir, desc, planned, exported.image,
                    [(layer.name, layer.reused) for layer in exported.layers], project, mtime,
                    options.registry, log)
                final, layers = result.image, result.layers
                timings["dockerfile"] = time.monotonic() - started
                timings["retar"] = result.retar_seconds
                started = time.monotonic()
                phase = (ExportError, "export")
            if per_function:
                assert registry is not None  # per_function says so
                pushed = publish.push_per_function(
                    app_dir, desc, built, base, exported, dest, function_tags, registry, project,
                    run_image_ref=run_image_ref, stack=stack, mtime=mtime, log=log,
                    user=chosen.user)
                digest = exported.image.digest
            else:
                log.info("writing %s", dest)
                digest = transports.write_image(final, dest, tags=tags,
                                                progress=log.info,
                                                registry=registry or options.registry)
                pushed = publish.pushed_references([dest, *tags], digest)
            if cache_ref is not None:
                started_cache = time.monotonic()
                reuse = reuse_mod.write_cache(reuse, project, group, stack, base.platform,
                                              mtime, reading, log)
                timings["cache_image"] = time.monotonic() - started_cache
                started += timings["cache_image"]  # not export's time
    except OSError as exc:
        raise os_failure(phase[0], phase[1], exc) from exc
    timings["export"] = timings.get("export", 0.0) + time.monotonic() - started

    report = BuildReport(
        image=str(dest),
        tags=tuple(str(t) for t in tags),
        digest=digest,
        config_digest=final.config_digest,
        layers=layers,
        processes=tuple(ReportedProcess(p.name, p.event, p.name == exported.default_process)
                        for p in built.processes),
        timings={k: round(v, 3) for k, v in timings.items()},
        pushed=pushed,
        dockerfile=planned.record if planned is not None else None,
        previous_image=reuse.reported_previous(),
        cache_image=reuse.reported_cache(),
    )
    if planned is not None:
        # The engine's state (its FROM images) is not observed: no receipt may answer for it.
        return report
    if observed is not None and cache_ref is None:
        # With a cache image, every build must write it: no receipt may answer instead.
        _record_receipt(observed, report, outcome, run_image_ref, base, [dest, *tags],
                        exported.image, log)
    return report


def _dockerfile_plan(inputs: Inputs, log: logging.Logger) -> Plan | None:
    """The custom Dockerfile's plan when the descriptor names one (docs/reference.md §7)."""
    app_dir, desc, _ = prepare(inputs, log)
    if desc.dockerfile is None:
        return None
    from lifecycle.dockerfile import phase as dockerfile_phase

    return dockerfile_phase.plan(app_dir, desc.dockerfile, log)


def _dockerfile_build(app_dir: Path, desc: Descriptor, chosen: Plan, base: image.Image | None,
                      base_report: list[tuple[str, bool]], project: cache_mod.ProjectCache,
                      mtime: int, registry: RegistryOptions | None, log: logging.Logger
                      ) -> Result:
    import shutil
    import tempfile

    from lifecycle.dockerfile import phase as dockerfile_phase
    from lifecycle.phases.export import DEFAULT_EXCLUDES

    project.project_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="dockerfile-", dir=project.project_dir))
    try:
        return dockerfile_phase.build(app_dir, desc, chosen, base=base, base_report=base_report,
                                      blobs=project.blobs, workdir=workdir, mtime=mtime,
                                      default_excludes=DEFAULT_EXCLUDES, log=log,
                                      registry=registry)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _run_container_build(inputs: Inputs, options: BuildInputs, chosen: Plan,
                         dest: reference.Reference, tags: list[reference.Reference],
                         log: logging.Logger) -> BuildReport:
    """Container mode: the Dockerfile is the whole build; no buildpack runs."""
    if options.cache_image or options.previous_image:
        log.warning("--previous-image and --cache-image are not used: the Dockerfile builds "
                    "the whole image (container mode), and no buildpack layer is reused")
    started = time.monotonic()
    app_dir, desc, cache_root = prepare(inputs, log)
    mtime = source_date_epoch()
    project = cache_mod.ProjectCache(cache_root, cache_mod.project_key(desc.id, app_dir))
    with project.locked():
        result = _dockerfile_build(app_dir, desc, chosen, None, [], project, mtime,
                                   options.registry, log)
        built = time.monotonic()
        log.info("writing %s", dest)
        digest = transports.write_image(result.image, dest, tags=tags, progress=log.info,
                                        registry=options.registry)
    default = next((fn.name for fn in desc.functions if fn.default),
                   desc.functions[0].name if desc.functions else None)
    return BuildReport(
        image=str(dest),
        tags=tuple(str(t) for t in tags),
        digest=digest,
        config_digest=result.image.config_digest,
        layers=result.layers,
        processes=tuple(ReportedProcess(fn.name, fn.event, fn.name == default)
                        for fn in desc.functions),
        timings={"detect": 0.0, "build": round(built - started, 3),
                 "export": round(time.monotonic() - built, 3),
                 "dockerfile": round(built - started, 3),
                 "retar": round(result.retar_seconds, 3)},
        pushed=publish.pushed_references([dest, *tags], digest),
        dockerfile=chosen.record,
    )


@contextlib.contextmanager
def _executor(options: BuildInputs, app_dir: Path, project: cache_mod.ProjectCache,
              outcome: DetectOutcome, chosen: runbase.ChosenBase,
              secret_files: Mapping[str, Path], log: logging.Logger
              ) -> Iterator[tuple[HostExecutor | ContainerExecutor, dict[str, str]]]:
    """The chosen executor and the base of its build env; a build container is removed on
    the way out, however the build ends."""
    from lifecycle.buildcontainer.choice import build_image_of, choose

    choice, client = choose(options.executor, build_image_of(chosen.build_image), log)
    project.executor = choice.cache_key
    if client is None:
        yield HostExecutor(), host_env()
        return
    from lifecycle.buildcontainer import spec

    assert choice.image is not None
    layer_dirs = {lp.id: project.layers_dir(lp.id) for lp in outcome.group}
    container = spec.container_spec(choice.image, app_dir=app_dir, layer_dirs=layer_dirs,
                                    secrets_dir=secrets_mod.directory_of(secret_files),
                                    ca=spec.ca_bundle(options.ca_bundle),
                                    network=options.network)
    with ContainerExecutor(container, client, log) as executor:
        yield executor, spec.image_env(client, choice.image)


def _record_receipt(observed: receipt.Observation, report: BuildReport,
                    outcome: DetectOutcome, run_image_ref: reference.Reference,
                    base: image.Image, refs: list[reference.Reference], built: image.Image,
                    log: logging.Logger) -> None:
    """Record what a rebuild must observe to be answered without running (cache.receipt)."""
    from lifecycle.image.transports.store import open_store

    members = outcome.group
    store = open_store()
    store_root = str(store.root)
    ledger = store.layout.blobs.ledger
    outputs = None
    if all(ref.transport == "store" for ref in refs):
        outputs = receipt.Outputs(
            store_root, tuple(ref.store_name for ref in refs), report.digest,
            (report.digest, built.config_digest, *(layer.digest for layer in built.layers)),
            str(ledger.path) if ledger is not None else None)
    run_image = receipt.local_source(
        run_image_ref.transport, run_image_ref.path, store_root,
        run_image_ref.store_name if run_image_ref.transport == "store" else None, base.digest)
    receipt.record(observed, report,
                   hermetic=all(lp.hermetic for lp in members),
                   tools=[tool for lp in members for tool in lp.tools],
                   run_image=run_image, outputs=outputs, log=log)
