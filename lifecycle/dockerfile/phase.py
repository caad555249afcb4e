"""The Dockerfile phase: plan the mode, build in the engine, renormalise into our image.

Extend mode builds ``FROM`` the buildpacks' image (the build arg ``HYBRIDLESS_IMAGE``), so the
result keeps its layers' blobs, label, processes and launcher unless the Dockerfile changes
them. Container mode builds whatever the Dockerfile says. Either way the engine's result is
taken apart and rebuilt here: the engine's own layer tars, config and history carry build
times, container ids and build-arg values, none of which belong in a reproducible image.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifecycle import __version__, jsonutil
from lifecycle.descriptor import Descriptor, DockerfileSpec
from lifecycle.dockerfile import context as context_mod
from lifecycle.dockerfile import engine, renormalise, syntax
from lifecycle.errors import DockerfileBuildFailed, LifecycleError
from lifecycle.hookspecs import BUILDPACK_API
from lifecycle.image import image, tarball
from lifecycle.image.blobs import BlobDir
from lifecycle.phases import label as label_mod
from lifecycle.phases.report import ExportedLayer

if TYPE_CHECKING:
    import docker

_ROOT_USERS = ("", "0", "root")
_RUNTIME_KEYS = ("User", "ExposedPorts", "Env", "Entrypoint", "Cmd", "Volumes", "WorkingDir",
                 "Labels", "StopSignal", "Healthcheck", "Shell")


@dataclass(frozen=True)
class Plan:
    """What the Dockerfile asks for, read before anything is built."""

    spec: DockerfileSpec
    dockerfile: syntax.Dockerfile
    platform: str
    api: Any = None
    """The engine client the plan was made with (kept so the build uses the same engine)."""

    @property
    def mode(self) -> str:
        """``extend`` or ``container`` (docs/reference.md §7)."""
        return "extend" if self.dockerfile.extends and not self.spec.container else "container"

    @property
    def record(self) -> dict[str, str]:
        """What the label and ``build --json`` say about the Dockerfile."""
        return {"mode": self.mode, "path": self.spec.dockerfile}

    @property
    def needs_buildpacks(self) -> bool:
        """Whether some stage starts from the buildpacks' image."""
        return not self.spec.container and any(
            syntax.is_base_arg(stage.raw_base) for stage in self.dockerfile.stages)


@dataclass(frozen=True)
class Result:
    """The renormalised image, its per-layer report and the time the re-tar took."""

    image: image.Image
    layers: tuple[ExportedLayer, ...]
    retar_seconds: float
    dropped: tuple[str, ...]


def plan(app_dir: Path, spec: DockerfileSpec, log: logging.Logger) -> Plan:
    """Read the Dockerfile and decide the mode; says which mode and why."""
    path = context_mod.inside(app_dir, spec.dockerfile, "dockerfile")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DockerfileBuildFailed(
            f"failed to find the Dockerfile {spec.dockerfile} in {app_dir}",
            hint="create it, or fix the function's 'dockerfile' key in the descriptor") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DockerfileBuildFailed(f"failed to read the Dockerfile {path}: {exc}",
                                    hint="make it a readable UTF-8 text file") from exc
    for number, copy in enumerate(spec.additional_files):  # refused before anything runs
        context_mod.inside(app_dir, copy.source, f"additional-docker-files[{number}].from")
    api = engine.connect()
    host = engine.platform(api)
    parsed = syntax.parse(text, spec.dockerfile, build_args=spec.build_args, platform=host)
    result = Plan(spec, parsed, host, api)
    last = parsed.stages[-1]
    if result.mode == "extend":
        log.info("Dockerfile %s: extend mode (its last stage starts FROM ${%s}, the "
                 "buildpacks' image)", spec.dockerfile, syntax.BASE_ARG)
    elif spec.container:
        log.info("Dockerfile %s: container mode (runtime = \"container\"): the Dockerfile is "
                 "the whole build", spec.dockerfile)
    else:
        log.warning("Dockerfile %s: container mode: its last stage starts FROM %s, not "
                    "${%s}, so the image is the Dockerfile's alone", spec.dockerfile,
                    last.raw_base, syntax.BASE_ARG)
    return result


def build(app_dir: Path, descriptor: Descriptor, chosen: Plan, *, base: image.Image | None,
          base_report: Sequence[tuple[str, bool]], blobs: BlobDir, workdir: Path, mtime: int,
          default_excludes: Sequence[str], log: logging.Logger, registry: Any = None) -> Result:
    """Build the planned Dockerfile and return the renormalised image.

    ``base`` is the buildpacks' image (extend mode, or any stage using it), ``base_report``
    the name of each of its layers and whether the export reused it; ``registry`` the
    registry options ``FROM`` images are pulled with.
    """
    api: docker.APIClient = chosen.api
    spec = chosen.spec
    ctx = context_mod.collect(app_dir, descriptor, spec, default_excludes, log)
    args = dict(spec.build_args)
    loaded = None
    if base is not None:
        loaded = f"hybridless-dockerfile/base:{base.config_digest.removeprefix('sha256:')[:12]}"
        started = time.monotonic()
        engine.load(base, loaded)
        log.info("loaded the buildpacks' image into the engine as %s (%.1f s)", loaded,
                 time.monotonic() - started)
        args[syntax.BASE_ARG] = loaded
    engine.ensure_present(api, chosen.dockerfile.external_images, platform=chosen.platform,
                          registry=registry, log=log)
    root = chosen.dockerfile.root_of(chosen.dockerfile.stages[-1])
    from_image = (None if chosen.mode == "extend" or root.base == "scratch"
                  else engine.describe(api, root.base))
    base_count = (len(base.layers) if chosen.mode == "extend" and base is not None
                  else from_image.layers if from_image is not None else 0)
    tag = f"hybridless-dockerfile/build:{secrets.token_hex(6)}"
    try:
        started = time.monotonic()
        image_id = engine.build(api, ctx.stream(mtime), dockerfile=spec.dockerfile,
                                build_args=args, tag=tag, log=log)
        log.info("the engine built %s (%.1f s)", image_id[:19], time.monotonic() - started)
        started = time.monotonic()
        known = {layer.diff_id for layer in base.layers} if base is not None else set()
        saved = engine.save(api, image_id, known=known, workdir=workdir / "layers")
        log.info("saved it from the engine (%.1f s)", time.monotonic() - started)
    finally:
        engine.remove(api, tag)
        if loaded:
            engine.remove(api, loaded)
    try:
        return _assemble(saved, chosen, base, base_report,
                         base_count, args, blobs, mtime, descriptor, from_image, log)
    finally:
        shutil.rmtree(workdir / "layers", ignore_errors=True)


def _assemble(saved: engine.Saved, chosen: Plan, base: image.Image | None,
              base_report: Sequence[tuple[str, bool]], base_count: int, args: Mapping[str, str],
              blobs: BlobDir, mtime: int, descriptor: Descriptor,
              from_image: label_mod.RunImage | None, log: logging.Logger) -> Result:
    config = jsonutil.loads(saved.config_bytes)
    diff_ids = list(config.get("rootfs", {}).get("diff_ids") or [])
    layers: list[image.Layer] = []
    report: list[ExportedLayer] = []
    dropped: list[str] = []
    # Any layer the buildpacks' image has keeps its blob, wherever it sits in the result.
    ours: dict[str, tuple[image.Layer, str, bool]] = {}
    for index, layer in enumerate(base.layers if base is not None else ()):
        name, reused = base_report[index] if index < len(base_report) else ("base", True)
        ours.setdefault(layer.diff_id, (layer, name, reused))
    started = time.monotonic()
    for index, diff_id in enumerate(diff_ids):
        if diff_id in ours:
            layer, name, reused = ours[diff_id]
            layers.append(layer)
            report.append(ExportedLayer(name, layer.digest, layer.diff_id, layer.size, reused))
            continue
        path = saved.layer_files[diff_id]
        if index < base_count:
            # The FROM image's own layer, whose blob we do not have: same bytes, our framing.
            blob = tarball.write_tar_layer(tarball.read_blocks(path), blobs)
            name = "base"
        else:
            members, leftovers = renormalise.plan(path, mtime)
            dropped.extend(leftovers)
            blob = tarball.write_tar(renormalise.tar_stream(path, members), blobs)
            name = "dockerfile"
        layers.append(image.Layer(blob.digest, blob.diff_id, blob.size, blob.media_type, blobs))
        report.append(ExportedLayer(name, blob.digest, blob.diff_id, blob.size, False))
    retar = time.monotonic() - started
    log.info("re-tarred the Dockerfile's layers (%.2f s)", retar)
    if dropped:
        log.info("dropped %d package-manager leftovers that record build times: %s",
                 len(dropped), ", ".join(sorted(set(dropped))[:8]))
    out = image.Image(jsonutil.dumps(_config(config, layers, mtime, args, chosen, descriptor,
                                             from_image, log)), tuple(layers))
    return Result(out, tuple(report), retar, tuple(dropped))


def _config(config: Mapping[str, Any], layers: Sequence[image.Layer], mtime: int,
            args: Mapping[str, str], chosen: Plan, descriptor: Descriptor,
            from_image: label_mod.RunImage | None, log: logging.Logger) -> dict[str, Any]:
    """The engine's config with only what an image means: no build times, hosts or args."""
    created = image.created_from_epoch(mtime)
    runtime = {k: v for k, v in (config.get("config") or {}).items()
               if k in _RUNTIME_KEYS and v not in (None, "", [], {})}
    labels = dict(runtime.get("Labels") or {})
    labels[label_mod.BUILD_LABEL] = _label(labels, chosen, descriptor, from_image)
    runtime["Labels"] = labels
    if chosen.mode == "container":
        runtime["Env"] = _handler_env(list(runtime.get("Env") or []), descriptor)
    user = str(runtime.get("User") or "")
    if user.split(":")[0] in _ROOT_USERS:
        log.warning("the image built from %s runs as root (USER %s); end the Dockerfile with "
                    "'USER <the stack's user>' after installing packages as root",
                    chosen.spec.dockerfile, user or "unset")
    history = [_history(entry, created, args) for entry in config.get("history") or []]
    out: dict[str, Any] = {
        "architecture": config.get("architecture", "amd64"),
        "os": config.get("os", "linux"),
        "created": created,
        "config": runtime,
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": history,
    }
    for key in ("variant", "author"):
        if config.get(key):
            out[key] = config[key]
    return out


def _history(entry: Mapping[str, Any], created: str, args: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"created": created}
    if entry.get("created_by"):
        out["created_by"] = without_args(str(entry["created_by"]), args)
    if entry.get("empty_layer"):
        out["empty_layer"] = True
    return out


def without_args(created_by: str, args: Mapping[str, str]) -> str:
    """``created_by`` with every build arg's value removed (``|1 K=V sh -c`` → ``|1 K sh -c``)."""
    for key, value in sorted(args.items(), key=lambda kv: -len(kv[1])):
        if not value:
            continue
        created_by = created_by.replace(f"{key}={value}", key)
        if len(value) >= 4:
            created_by = created_by.replace(value, f"${{{key}}}")
    return created_by


def _label(labels: Mapping[str, str], chosen: Plan, descriptor: Descriptor,
           from_image: label_mod.RunImage | None) -> str:
    """Our build label with the Dockerfile recorded; a fresh one in container mode."""
    if chosen.mode == "extend":
        try:
            ours = label_mod.read(labels, chosen.spec.dockerfile)
        except LifecycleError:
            ours = None  # the Dockerfile set a LABEL of that name: its value stands
        if ours is None:
            return labels.get(label_mod.BUILD_LABEL, "")
        return ours.with_dockerfile(chosen.mode, chosen.spec.dockerfile).encode()
    fresh = label_mod.BuildLabel(
        api=BUILDPACK_API, lifecycle=__version__, project=descriptor.project_id,
        buildpacks=(), layers=(),
        processes=tuple(label_mod.LabelProcess(fn.name, fn.event, (), fn.default)
                        for fn in descriptor.functions),
        run_image=from_image or label_mod.RunImage("scratch", "", 0, None),
        stack=None, revision=None, compressor=tarball.COMPRESSOR)
    return fresh.with_dockerfile(chosen.mode, chosen.spec.dockerfile).encode()


def _handler_env(env: list[str], descriptor: Descriptor) -> list[str]:
    """Container mode: a function's handler still sets ENTRYPOINT/ENTRYPOINT_FUNC (§7)."""
    present = {item.partition("=")[0] for item in env}
    for fn in descriptor.functions:
        if fn.dockerfile is not None and fn.handler:
            for key, value in (("ENTRYPOINT", fn.entrypoint),
                               ("ENTRYPOINT_FUNC", fn.entrypoint_func)):
                if key not in present:
                    env.append(f"{key}={value}")
                    present.add(key)
            break
    return env
