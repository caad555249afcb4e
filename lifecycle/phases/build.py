"""The build phase: run each buildpack of the detected group in order, then seal its layers.

A launch layer that was not reused is turned into a blob as soon as its buildpack returns, and
only then is its record written. A reused launch layer keeps its old blob: no re-tar, no
re-compress. Layers the previous build had but this one did not declare are dropped.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lifecycle.cache.layers import BlobInfo, LayerRecord, ProjectCache, bp_dirname
from lifecycle.descriptor import Descriptor, Function
from lifecycle.errors import BuildError, BuildpackFailed, LifecycleError
from lifecycle.hookspecs import (
    Append,
    BuildContext,
    BuildResult,
    Default,
    EnvValue,
    Executor,
    Prepend,
    Process,
)
from lifecycle.image import tarball, tree
from lifecycle.image.blobs import Digest
from lifecycle.phases.detect import DetectOutcome


@dataclass(frozen=True)
class BuiltLayer:
    """A launch layer ready for export."""

    buildpack: str
    name: str
    blob: BlobInfo
    metadata: Mapping[str, Any]
    reused: bool
    origin: str | None = None
    """``HOST/REPO`` whose blob this is when it was reused by digest and never fetched."""

    @property
    def label_name(self) -> str:
        """``<buildpack-id>/<layer>`` as docs/reference.md §1 names layers."""
        return f"{self.buildpack}/{self.name}"


@dataclass(frozen=True)
class BuildOutcome:
    """Everything export needs from build."""

    buildpacks: tuple[tuple[str, str], ...]
    layers: tuple[BuiltLayer, ...]
    processes: tuple[Process, ...]
    launch_env: tuple[tuple[str, EnvValue], ...]
    labels: Mapping[str, str]
    app_exclude: tuple[str, ...]
    app_links: Mapping[str, str]
    functions: tuple[Function, ...] = field(default_factory=tuple)


def apply_env(base: Mapping[str, str], changes: Sequence[tuple[str, EnvValue]]) -> dict[str, str]:
    """Fold env operations over ``base`` in order."""
    env = dict(base)
    for key, value in changes:
        current = env.get(key)
        if isinstance(value, Prepend):
            env[key] = value.value + (value.sep + current if current else "")
        elif isinstance(value, Append):
            env[key] = (current + value.sep if current else "") + value.value
        elif isinstance(value, Default):
            env.setdefault(key, value.value)
        else:
            env[key] = str(value)
    return env


def build(app_dir: Path, descriptor: Descriptor, detected: DetectOutcome, cache: ProjectCache,
          *, executor: Executor, base_env: Mapping[str, str], stack: str | None,
          mtime: int, log: logging.Logger,
          stack_provides: Mapping[str, str] | None = None,
          secrets: Mapping[str, Path] | None = None) -> BuildOutcome:
    """Run the group's builds; the caller holds ``cache.locked()``.

    ``secrets`` are the staged ``--secret`` files by id (:mod:`lifecycle.secrets`).
    """
    env = dict(base_env)
    layers: list[BuiltLayer] = []
    processes: list[Process] = []
    launch_env: list[tuple[str, EnvValue]] = []
    labels: dict[str, str] = {}
    excludes: list[str] = []
    links: dict[str, str] = {}
    for loaded in detected.group:
        bp = loaded.buildpack
        bp_log = log.getChild(bp.id.replace("/", "."))
        log.info("building with %s %s", bp.id, bp.version)
        records = cache.records(bp.id)
        previous = {name: rec.metadata for name, rec in records.items()}
        ctx = BuildContext(
            buildpack_id=bp.id, app_dir=app_dir, layers_dir=cache.layers_dir(bp.id),
            descriptor=descriptor, functions=detected.functions,
            options=descriptor.options_for(bp.id),
            plan=tuple(e for e in detected.plan if e.provider == bp.id),
            env=dict(env), stack=stack, log=bp_log, executor=executor, layers=cache,
            previous=previous, stack_provides=dict(stack_provides or {}),
            secrets=dict(secrets or {}),
        )
        try:
            result = bp.build(ctx)
        except LifecycleError:
            raise
        except Exception as exc:
            raise BuildpackFailed(
                f"failed to build: buildpack '{bp.id}' {bp.version} raised "
                f"{type(exc).__name__}: {exc}",
                hint="run with -v for the traceback; report it to the buildpack's authors",
            ) from exc
        if not isinstance(result, BuildResult):
            raise BuildpackFailed(f"failed to build: buildpack '{bp.id}' returned "
                                  f"{type(result).__name__}, not a BuildResult")
        layers.extend(_seal_layers(cache, bp.id, records, mtime, log))
        env = apply_env(env, list(result.build_env.items()))
        launch_env.extend(result.launch_env.items())
        processes.extend(result.processes)
        labels.update(result.labels)
        excludes.extend(result.app_exclude)
        links.update(result.app_links)
    _check_processes(processes)
    return BuildOutcome(
        buildpacks=tuple((lp.id, lp.buildpack.version) for lp in detected.group),
        layers=tuple(layers), processes=tuple(processes), launch_env=tuple(launch_env),
        labels=labels, app_exclude=tuple(excludes), app_links=links, functions=detected.functions,
    )


def _seal_layers(cache: ProjectCache, buildpack_id: str, records: Mapping[str, LayerRecord],
                 mtime: int, log: logging.Logger) -> list[BuiltLayer]:
    """Tar new launch layers, write their records, drop layers this build did not declare.

    ``records`` are the ones read before the buildpack ran; a reused layer's record is
    unchanged since, so it is not read again.
    """
    declared = {name: h for (bp, name), h in cache.declared.items() if bp == buildpack_id}
    for stale in set(records) - set(declared):
        cache.drop(buildpack_id, stale)
    built: list[BuiltLayer] = []
    for name in sorted(declared):
        handle = declared[name]
        if handle.reused:
            record = records.get(name)
            if record is None:
                raise BuildError(f"failed to reuse layer {buildpack_id}/{name}: its record "
                                 "vanished during the build")
            if handle.launch and record.blob is not None:
                log.info("reusing layer %s/%s (%s)", buildpack_id, name,
                         Digest(record.blob.digest).short)
                remote = None if cache.blobs.has(record.blob.digest) else record.origin
                built.append(BuiltLayer(buildpack_id, name, record.blob, record.metadata, True,
                                        remote))
            continue
        blob = None
        if handle.launch:
            entries = tree.scan(handle.path, prefix=f"layers/{bp_dirname(buildpack_id)}/{name}",
                                confine=False)
            written = tarball.write_layer(entries, cache.blobs, mtime=mtime)
            blob = BlobInfo(written.digest, written.diff_id, written.size)
            log.info("sealed layer %s/%s (%s, %d bytes)", buildpack_id, name,
                     Digest(blob.digest).short, blob.size)
            built.append(BuiltLayer(buildpack_id, name, blob, handle.metadata, False))
        if handle.launch or handle.cache:
            cache.write_record(LayerRecord(buildpack_id, name, handle.launch, handle.build,
                                           handle.cache, handle.metadata, blob,
                                           cache.executor))
        if not (handle.build or handle.cache):
            # Its blob is all a later build needs; the files would only take disk space.
            shutil.rmtree(handle.path, ignore_errors=True)
    return built


def _check_processes(processes: Sequence[Process]) -> None:
    seen: set[str] = set()
    for proc in processes:
        if proc.name in seen:
            raise BuildError(f"failed to build: two processes are named '{proc.name}'",
                             hint="give each function a unique name")
        seen.add(proc.name)
        if not proc.command:
            raise BuildError(f"failed to build: process '{proc.name}' has an empty command")
