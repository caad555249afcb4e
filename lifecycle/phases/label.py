"""The ``io.hybridless.build`` label (docs/reference.md §4): written by export, rewritten by
rebase, read by inspect. Its one home, so the phases share typed fields instead of JSON keys.

The label's bytes are part of the image config, so :meth:`BuildLabel.to_json` must keep its
keys and values exactly: a different spelling would change every image digest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifecycle.errors import UsageError
from lifecycle.jsonutil import dumps as canonical
from lifecycle.jsonutil import loads

if TYPE_CHECKING:  # annotations only: run and invoke read the label without the image model
    from lifecycle.image import image
    from lifecycle.image.reference import Reference

BUILD_LABEL = "io.hybridless.build"
STACK_LABEL = "io.hybridless.stack"
"""The run image's stack id (CONTRACT §6); a run image without it has no stack."""
_KEYS = ("api", "lifecycle", "project", "buildpacks", "layers", "processes", "run-image",
         "stack", "source", "compressor", "dockerfile", "executor")


@dataclass(frozen=True)
class RunImage:
    """The base an image was built or rebased on: what rebase checks and swaps."""

    reference: str
    digest: str
    layers: int
    top_layer: str | None

    @classmethod
    def of(cls, ref: Reference, base: image.Image) -> RunImage:
        """The run-image part for ``base``, read from ``ref``."""
        return cls(portable_reference(ref), base.digest, len(base.layers),
                   base.layers[-1].diff_id if base.layers else None)

    def to_json(self) -> dict[str, Any]:
        """The label's ``run-image`` object."""
        return {"reference": self.reference, "digest": self.digest, "layers": self.layers,
                "top-layer": self.top_layer}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunImage:
        """Parse the label's ``run-image`` object."""
        layers = data["layers"]
        if not isinstance(layers, int) or isinstance(layers, bool) or layers < 0:
            raise ValueError(f"run-image.layers = {layers!r} is not a layer count")
        top = data.get("top-layer")
        if top is not None and not isinstance(top, str):
            raise ValueError(f"run-image.top-layer = {top!r} is not a diff_id")
        return cls(str(data["reference"]), str(data["digest"]), layers, top)


@dataclass(frozen=True)
class LabelBuildpack:
    """One buildpack of the group that built the image."""

    id: str
    version: str


@dataclass(frozen=True)
class LabelLayer:
    """One layer the lifecycle added, by name, with the metadata its buildpack gave it."""

    name: str
    diff_id: str
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LabelProcess:
    """One process of the image's launcher."""

    name: str
    event: str
    command: tuple[str, ...]
    default: bool


@dataclass(frozen=True)
class BuildLabel:
    """What the lifecycle records about how an image was built."""

    api: str
    lifecycle: str
    project: str | None
    buildpacks: tuple[LabelBuildpack, ...]
    layers: tuple[LabelLayer, ...]
    processes: tuple[LabelProcess, ...]
    run_image: RunImage
    stack: str | None
    revision: str | None
    compressor: str
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Keys this lifecycle does not know (a newer writer's), kept as they are by rebase."""
    dockerfile: Mapping[str, str] | None = None
    """``{"mode": "extend" | "container", "path": …}`` for a custom Dockerfile's image (§7)."""
    executor: str | None = None
    """What ran the buildpacks' commands (``local``, or ``docker <build image id>``), as the
    cache records it: a later build elsewhere reuses these layers only with the same one."""

    def to_json(self) -> dict[str, Any]:
        """The label's JSON object (canonicalised by :meth:`encode`)."""
        return {
            **self.extra,
            "api": self.api,
            "lifecycle": self.lifecycle,
            "project": self.project,
            "buildpacks": [{"id": b.id, "version": b.version} for b in self.buildpacks],
            "layers": [{"name": la.name, "diff_id": la.diff_id, "metadata": la.metadata}
                       for la in self.layers],
            "processes": [{"name": p.name, "event": p.event, "command": list(p.command),
                           "default": p.default} for p in self.processes],
            "run-image": self.run_image.to_json(),
            "stack": self.stack,
            "source": {"revision": self.revision} if self.revision else {},
            "compressor": self.compressor,
            # Only images a Dockerfile built carry the key, so other digests do not change.
            **({"dockerfile": dict(self.dockerfile)} if self.dockerfile is not None else {}),
            **({"executor": self.executor} if self.executor is not None else {}),
        }

    def encode(self) -> str:
        """The label value: canonical JSON text."""
        return canonical(self.to_json()).decode()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BuildLabel:
        """Parse the label's JSON object; raises KeyError, TypeError or ValueError."""
        source = data.get("source") or {}
        return cls(
            api=str(data["api"]),
            lifecycle=str(data["lifecycle"]),
            project=data.get("project"),
            buildpacks=tuple(LabelBuildpack(str(b["id"]), str(b["version"]))
                             for b in data["buildpacks"]),
            layers=tuple(LabelLayer(str(la["name"]), str(la["diff_id"]),
                                    dict(la.get("metadata") or {})) for la in data["layers"]),
            processes=tuple(LabelProcess(str(p["name"]), str(p["event"]),
                                         tuple(p["command"]), bool(p["default"]))
                            for p in data["processes"]),
            run_image=RunImage.from_json(data["run-image"]),
            stack=data.get("stack"),
            revision=source.get("revision"),
            compressor=str(data["compressor"]),
            extra={k: v for k, v in data.items() if k not in _KEYS},
            dockerfile=({str(k): str(v) for k, v in data["dockerfile"].items()}
                        if data.get("dockerfile") is not None else None),
            executor=str(data["executor"]) if data.get("executor") is not None else None,
        )

    def rebased(self, run_image: RunImage) -> BuildLabel:
        """The same label on another run image."""
        return replace(self, run_image=run_image)

    def with_dockerfile(self, mode: str, path: str) -> BuildLabel:
        """The same label recording the Dockerfile that built on top of it."""
        return replace(self, dockerfile={"mode": mode, "path": path})


def read(labels: Mapping[str, str], ref: object) -> BuildLabel | None:
    """The image's build label, None when it has none; a usage error when it is unreadable."""
    text = labels.get(BUILD_LABEL)
    if text is None:
        return None
    try:
        return BuildLabel.from_json(loads(text))
    except RecursionError:
        raise UsageError(f"failed to read the {BUILD_LABEL} label of {ref}: it is nested too "
                         "deeply", hint="the label was not written by hybridless-lifecycle, "
                                        "or was edited") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UsageError(f"failed to read the {BUILD_LABEL} label of {ref}: "
                         f"{type(exc).__name__}: {exc}",
                         hint="the label was not written by hybridless-lifecycle, or was "
                              "edited") from None


def portable_reference(ref: Reference) -> str:
    """The run-image reference without host paths, so the label does not depend on them."""
    if ref.transport in ("oci", "oci-archive", "docker-archive"):
        text = str(ref)
        path = getattr(ref, "path", None)
        if path:
            text = text.replace(str(path), Path(str(path)).name)
        return text
    return str(ref)
