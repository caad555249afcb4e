"""The export phase: base layers, then launch layers, then the app at ``/var/task``, then the
launcher, then the config (docs/reference.md §4). No daemon: the result is an image value that
a sink writes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifecycle import __version__, exclusions
from lifecycle.cache import appindex
from lifecycle.cache.appindex import AppIndex
from lifecycle.cache.layers import BlobInfo
from lifecycle.descriptor import Descriptor
from lifecycle.errors import BuildError
from lifecycle.hookspecs import BUILDPACK_API
from lifecycle.image import image, tarball, tree
from lifecycle.image.blobs import BlobDir, Digest
from lifecycle.image.reference import Reference
from lifecycle.phases import launcher
from lifecycle.phases.build import BuildOutcome, apply_env
from lifecycle.phases.label import (
    BUILD_LABEL,
    BuildLabel,
    LabelBuildpack,
    LabelLayer,
    LabelProcess,
    RunImage,
)
from lifecycle.phases.report import ExportedLayer
from lifecycle.revision import git_revision

TASK_ROOT = "/var/task"
# Always out of the app layer; the secrets list (lifecycle.exclusions) comes on top, and
# the descriptor's and buildpacks' excludes add to both.
DEFAULT_EXCLUDES = (".git",)


@dataclass(frozen=True)
class Exported:
    """The image value plus the per-layer report."""

    image: image.Image
    layers: tuple[ExportedLayer, ...]
    default_process: str


def source_date_epoch(environ: Mapping[str, str] | None = None) -> int:
    """``SOURCE_DATE_EPOCH`` when set, else 1980-01-01T00:00:01Z."""
    environ = os.environ if environ is None else environ
    value = environ.get("SOURCE_DATE_EPOCH")
    if value is None or value == "":
        return tarball.DEFAULT_MTIME
    try:
        return int(value)
    except ValueError:
        from lifecycle.errors import UsageError

        raise UsageError(f"SOURCE_DATE_EPOCH={value!r} is not an integer number of "
                         "seconds") from None


def export(app_dir: Path, descriptor: Descriptor, built: BuildOutcome, base: image.Image, *,
           run_image_ref: Reference, blobs: BlobDir, stack: str | None, mtime: int,
           default_process: str | None, log: logging.Logger,
           app_index: AppIndex | None = None, user: str | None = None,
           remote: Callable[[str, BlobInfo], image.BlobSource] | None = None,
           executor: str | None = None) -> Exported:
    """Assemble the image on top of ``base``; layer blobs land in ``blobs``.

    ``user`` (``uid:gid``) replaces the base's default user; None keeps it. ``remote(origin,
    blob)`` is where a layer reused from a previous image, and never fetched, is read from.
    ``executor`` (the cache's executor key) goes into the build label.
    """
    report: list[ExportedLayer] = [
        ExportedLayer("base", layer.digest, layer.diff_id, layer.size, True)
        for layer in base.layers
    ]
    layers: list[image.Layer] = []
    history: list[str] = []
    for bl in built.layers:
        source: image.BlobSource = blobs
        if bl.origin is not None:
            if remote is None:
                raise BuildError(f"failed to export layer {bl.label_name}: its blob is in "
                                 f"{bl.origin}, and this export reads no registry")
            source = remote(bl.origin, bl.blob)
        layers.append(_layer(source, bl.blob))
        history.append(f"hybridless: layer {bl.label_name}")
        report.append(ExportedLayer(bl.label_name, bl.blob.digest, bl.blob.diff_id,
                                    bl.blob.size, bl.reused))

    app_blob, app_reused = _app_layer(app_dir, descriptor, built, blobs, mtime, app_index, log)
    layers.append(_layer(blobs, app_blob))
    history.append("hybridless: app")
    report.append(ExportedLayer("app", app_blob.digest, app_blob.diff_id, app_blob.size,
                                app_reused))

    default = launcher.default_process(built.processes, default_process)
    launcher_blob = _launcher_layer(built, default, blobs, mtime)
    layers.append(_layer(blobs, launcher_blob))
    history.append("hybridless: launcher")
    report.append(ExportedLayer("launcher", launcher_blob.digest, launcher_blob.diff_id,
                                launcher_blob.size, False))

    out = image.append_layers(base, layers, history=history)
    env = apply_env(base.env,
                    [("LAMBDA_TASK_ROOT", TASK_ROOT), ("HYBRIDLESS_RUNTIME", "true"),
                     *built.launch_env])
    labels = base.labels
    labels.update(built.labels)
    labels[BUILD_LABEL] = build_label(
        descriptor, built, base, run_image_ref, stack,
        {"app": app_blob.diff_id, "launcher": launcher_blob.diff_id}, default.name,
        app_dir, executor).encode()
    out = image.with_config(
        out,
        env=[f"{k}={v}" for k, v in env.items()],
        entrypoint=[launcher.PATH],
        cmd=None,
        working_dir=TASK_ROOT,
        labels=labels,
        created=image.created_from_epoch(mtime),
    )
    if user is not None:
        out = image.with_config(out, user=user)
    return Exported(out, tuple(report), default.name)


def _app_layer(app_dir: Path, descriptor: Descriptor, built: BuildOutcome, blobs: BlobDir,
               mtime: int, app_index: AppIndex | None, log: logging.Logger
               ) -> tuple[BlobInfo, bool]:
    """The app layer's blob; re-referenced without reading files when the stat index allows."""
    started = appindex.now_ns()
    exclude = (*DEFAULT_EXCLUDES, *descriptor.exclude, *built.app_exclude)
    secrets = exclusions.patterns(app_dir, descriptor.path)
    entries = tree.scan(app_dir, prefix=TASK_ROOT.lstrip("/"), include=descriptor.include,
                        exclude=exclude, confine=True, app_modes=True, warn=log.warning,
                        secrets=secrets,
                        on_secret=lambda rel: log.warning("%s", exclusions.message(rel)))
    entries = with_links(entries, built.app_links)
    shape = {"include": descriptor.include, "exclude": exclude, "secrets": secrets,
             "mtime": mtime, "compressor": tarball.COMPRESSOR}
    key, newest = appindex.scan_key(entries, shape)
    scan = appindex.Scan(entries, started, key, newest)
    if app_index is not None:
        previous = app_index.lookup(scan)
        if previous is not None and blobs.has(previous.digest):
            log.info("reusing app layer (%s): no file changed", Digest(previous.digest).short)
            return previous, True
    log.info("exporting app layer from %s (%d entries)", app_dir, len(entries))
    written = tarball.write_layer(entries, blobs, mtime=mtime)
    blob = BlobInfo(written.digest, written.diff_id, written.size)
    if app_index is not None:
        app_index.store(scan, blob)
    return blob, False


def with_links(entries: list[tree.Entry], links: Mapping[str, str]) -> list[tree.Entry]:
    """The app entries plus buildpack-declared symlinks, replacing same-named app paths."""
    if not links:
        return entries
    prefix = TASK_ROOT.lstrip("/")
    added = {}
    for rel, target in links.items():
        clean = rel.strip("/")
        if not clean or ".." in clean.split("/") or not target.startswith("/"):
            raise BuildError(f"failed to export: app link {rel!r} -> {target!r} must be a "
                             "relative path inside /var/task pointing at an absolute target")
        added[f"{prefix}/{clean}"] = tree.Entry(f"{prefix}/{clean}", "symlink", 0o777,
                                                target=target)
    shadowed = tuple(f"{name}/" for name in added)
    kept = [e for e in entries if e.name not in added and not e.name.startswith(shadowed)]
    names = {e.name for e in kept}
    for name in list(added):
        parent = name.rpartition("/")[0]
        while parent and parent not in names:
            added[parent] = tree.Entry(parent, "dir", 0o755)
            names.add(parent)
            parent = parent.rpartition("/")[0]
    return sorted([*kept, *added.values()], key=lambda e: e.name.encode())


def build_label(descriptor: Descriptor, built: BuildOutcome, base: image.Image,
                run_image_ref: Reference, stack: str | None, own_layers: Mapping[str, str],
                default: str, app_dir: Path, executor: str | None = None) -> BuildLabel:
    """The ``io.hybridless.build`` label of docs/reference.md §4."""
    return BuildLabel(
        api=BUILDPACK_API,
        lifecycle=__version__,
        project=descriptor.project_id,
        buildpacks=tuple(LabelBuildpack(bp_id, version) for bp_id, version in built.buildpacks),
        layers=tuple(LabelLayer(bl.label_name, bl.blob.diff_id, bl.metadata)
                     for bl in built.layers)
        + tuple(LabelLayer(name, diff_id) for name, diff_id in own_layers.items()),
        processes=tuple(LabelProcess(p.name, p.event, tuple(p.command), p.name == default)
                        for p in built.processes),
        run_image=RunImage.of(run_image_ref, base),
        stack=stack,
        revision=git_revision(app_dir),
        compressor=tarball.COMPRESSOR,
        executor=executor,
    )


def _layer(blobs: image.BlobSource, blob: BlobInfo) -> image.Layer:
    return image.Layer(digest=blob.digest, diff_id=blob.diff_id, size=blob.size,
                       media_type=tarball.Blob.media_type, source=blobs)


def _launcher_layer(built: BuildOutcome, default: Any, blobs: BlobDir, mtime: int) -> BlobInfo:
    script = launcher.render(built.processes, default)
    with tempfile.TemporaryDirectory(prefix="hybridless-launcher-") as tmp:
        root = Path(tmp) / "hybridless"
        root.mkdir()
        (root / "launcher").write_bytes(script)
        (root / "launcher").chmod(0o755)
        meta = {"processes": [p.name for p in built.processes], "default": default.name,
                "sha256": hashlib.sha256(script).hexdigest()}
        (root / "processes.json").write_text(json.dumps(meta, sort_keys=True))
        (root / "processes.json").chmod(0o644)
        root.chmod(0o755)
        entries = tree.scan(root, prefix="hybridless", confine=True)
        written = tarball.write_layer(entries, blobs, mtime=mtime)
    return BlobInfo(written.digest, written.diff_id, written.size)
