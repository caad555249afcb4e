"""``inspect``: what an image is, read through any transport."""

from __future__ import annotations

import json
from typing import Any

from lifecycle.image import reference, transports
from lifecycle.phases.export import BUILD_LABEL


def inspect(ref_text: str) -> dict[str, Any]:
    """The image's identity, config summary, layers and decoded build label."""
    ref = reference.parse(ref_text)
    img = transports.read_image(ref)
    config = img.config.get("config") or {}
    labels = img.labels
    build = labels.pop(BUILD_LABEL, None)
    return {
        "reference": str(ref),
        "digest": img.digest,
        "config_digest": img.config_digest,
        "created": img.config.get("created"),
        "os": img.config.get("os"),
        "architecture": img.config.get("architecture"),
        "entrypoint": config.get("Entrypoint"),
        "cmd": config.get("Cmd"),
        "user": config.get("User"),
        "working_dir": config.get("WorkingDir"),
        "env": config.get("Env") or [],
        "labels": labels,
        "layers": [{"digest": layer.digest, "diff_id": layer.diff_id, "size": layer.size,
                    "media_type": layer.media_type} for layer in img.layers],
        "build": json.loads(build) if build else None,
    }


def render(doc: dict[str, Any]) -> str:
    """A human-readable summary of :func:`inspect`'s document."""
    lines = [
        f"image:       {doc['reference']}",
        f"digest:      {doc['digest']}",
        f"created:     {doc['created']}   {doc['os']}/{doc['architecture']}",
        f"entrypoint:  {doc['entrypoint']}   cmd: {doc['cmd']}",
        f"user:        {doc['user'] or '(root)'}   workdir: {doc['working_dir']}",
        "layers:",
    ]
    names = _layer_names(doc)
    for layer in doc["layers"]:
        name = names.get(layer["diff_id"], "")
        lines.append(f"  {layer['digest'][:19]}  {layer['size']:>12}  {name}")
    build = doc["build"]
    if build:
        lines.append("buildpacks:  " + ", ".join(f"{b['id']}@{b['version']}"
                                                 for b in build["buildpacks"]))
        lines.append("processes:")
        for proc in build["processes"]:
            mark = " (default)" if proc["default"] else ""
            lines.append(f"  {proc['name']}: {proc['event']}{mark}")
        lines.append(f"run image:   {build['run-image']['reference']} "
                     f"({build['run-image']['digest'][:19]})")
    else:
        lines.append("(not built by hybridless-lifecycle)")
    return "\n".join(lines)


def _layer_names(doc: dict[str, Any]) -> dict[str, str]:
    build = doc["build"] or {}
    names = {layer["diff_id"]: layer["name"] for layer in build.get("layers", [])}
    base = build.get("run-image", {}).get("layers", 0)
    for layer in doc["layers"][:base]:
        names.setdefault(layer["diff_id"], "base")
    return names
