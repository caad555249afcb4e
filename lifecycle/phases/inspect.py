"""``inspect``: what an image is, read through any transport."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lifecycle.image import reference, transports
from lifecycle.image.blobs import Digest
from lifecycle.jsonutil import loads
from lifecycle.phases import label as label_mod
from lifecycle.phases.label import BUILD_LABEL, BuildLabel


@dataclass(frozen=True)
class InspectedLayer:
    """One layer of the manifest."""

    digest: str
    diff_id: str
    size: int
    media_type: str


@dataclass(frozen=True)
class Inspected:
    """An image's identity, config summary, layers and decoded build label."""

    reference: str
    digest: str
    config_digest: str
    created: str | None
    os: str | None
    architecture: str | None
    entrypoint: list[str] | None
    cmd: list[str] | None
    user: str | None
    working_dir: str | None
    env: list[str]
    labels: dict[str, str]
    layers: tuple[InspectedLayer, ...]
    build: BuildLabel | None

    def to_json(self) -> dict[str, Any]:
        """What ``inspect --json`` prints; ``build`` is the label as stored (sorted keys)."""
        return {
            **{k: v for k, v in self.__dict__.items() if k not in ("layers", "build")},
            "layers": [dict(layer.__dict__) for layer in self.layers],
            "build": loads(self.build.encode()) if self.build else None,
        }


def inspect(ref_text: str, *, platform: str | None = None, registry: Any = None) -> Inspected:
    """The image's identity, config summary, layers and decoded build label.

    A ``docker://`` image is read without its layers: manifest and config only.
    """
    ref = reference.parse(ref_text)
    if ref.transport == "docker":
        from lifecycle.image.transports import registry as remote

        img = remote.read_metadata(ref, platform, registry)
    else:
        img = transports.read_image(ref, platform=platform, registry=registry)
    config = img.config.get("config") or {}
    labels = img.labels
    build = label_mod.read(labels, ref)
    labels.pop(BUILD_LABEL, None)
    return Inspected(
        reference=str(ref),
        digest=img.digest,
        config_digest=img.config_digest,
        created=img.config.get("created"),
        os=img.config.get("os"),
        architecture=img.config.get("architecture"),
        entrypoint=config.get("Entrypoint"),
        cmd=config.get("Cmd"),
        user=config.get("User"),
        working_dir=config.get("WorkingDir"),
        env=config.get("Env") or [],
        labels=labels,
        layers=tuple(InspectedLayer(layer.digest, layer.diff_id, layer.size, layer.media_type)
                     for layer in img.layers),
        build=build,
    )


def render(doc: Inspected) -> str:
    """A human-readable summary of :func:`inspect`'s result."""
    lines = [
        f"image:       {doc.reference}",
        f"digest:      {doc.digest}",
        f"created:     {doc.created}   {doc.os}/{doc.architecture}",
        f"entrypoint:  {doc.entrypoint}   cmd: {doc.cmd}",
        f"user:        {doc.user or '(root)'}   workdir: {doc.working_dir}",
        "layers:",
    ]
    names = _layer_names(doc)
    for layer in doc.layers:
        name = names.get(layer.diff_id, "")
        lines.append(f"  {Digest(layer.digest).short}  {layer.size:>12}  {name}")
    build = doc.build
    if build:
        lines.append("buildpacks:  " + ", ".join(f"{b.id}@{b.version}" for b in build.buildpacks))
        lines.append("processes:")
        for proc in build.processes:
            mark = " (default)" if proc.default else ""
            lines.append(f"  {proc.name}: {proc.event}{mark}")
        lines.append(f"run image:   {build.run_image.reference} "
                     f"({Digest(build.run_image.digest).short})")
    else:
        lines.append("(not built by hybridless-lifecycle)")
    return "\n".join(lines)


def _layer_names(doc: Inspected) -> dict[str, str]:
    if doc.build is None:
        return {}
    names = {layer.diff_id: layer.name for layer in doc.build.layers}
    for layer in doc.layers[:doc.build.run_image.layers]:
        names.setdefault(layer.diff_id, "base")
    return names
