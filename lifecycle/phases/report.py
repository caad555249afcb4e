"""The build report that ``build --json`` prints (docs/reference.md §1).

Kept apart from the phases that fill it in, so that a no-change rebuild answered from its
receipt reads the report back without importing the image model or the buildpacks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple


# NamedTuple, not a frozen dataclass: this module runs on the no-change rebuild path, and
# importing dataclasses (with inspect, ast and dis) costs about 25 ms there.
class ExportedLayer(NamedTuple):
    """One layer of the exported image, as ``build --json`` reports it."""

    name: str
    digest: str
    diff_id: str
    size: int
    reused: bool

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return self._asdict()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ExportedLayer:
        """Parse :meth:`to_json`'s output."""
        return cls(str(data["name"]), str(data["digest"]), str(data["diff_id"]),
                   int(data["size"]), bool(data["reused"]))


class ReportedProcess(NamedTuple):
    """One process of the built image."""

    name: str
    event: str
    default: bool


class ReportedPrevious(NamedTuple):
    """``build --json``'s ``previous_image``: the image read and the layer records it gave."""

    image: str
    restored: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {"image": self.image, "restored": list(self.restored)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReportedPrevious:
        """Parse :meth:`to_json`'s output."""
        return cls(str(data["image"]), tuple(str(n) for n in data["restored"]))


class ReportedCache(NamedTuple):
    """``build --json``'s ``cache_image``: what came back from it and what was written."""

    image: str
    restored: tuple[str, ...]
    digest: str | None
    """None when it was not written (``error`` says why)."""
    layers: tuple[str, ...]
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {"image": self.image, "restored": list(self.restored), "digest": self.digest,
                "layers": list(self.layers), **({"error": self.error} if self.error else {})}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReportedCache:
        """Parse :meth:`to_json`'s output."""
        digest, error = data.get("digest"), data.get("error")
        return cls(str(data["image"]), tuple(str(n) for n in data["restored"]),
                   str(digest) if digest is not None else None,
                   tuple(str(n) for n in data["layers"]),
                   str(error) if error is not None else None)


class BuildReport(NamedTuple):
    """What one ``build`` produced: where, which digests, which layers and processes, how fast."""

    image: str
    tags: tuple[str, ...]
    digest: str
    config_digest: str
    layers: tuple[ExportedLayer, ...]
    processes: tuple[ReportedProcess, ...]
    timings: Mapping[str, float]
    unchanged: bool = False
    """True when the build was answered from its receipt without running a phase."""
    pushed: tuple[str, ...] = ()
    """Registry references written, pinned by digest (``HOST/REPO@sha256:…``)."""
    dockerfile: Mapping[str, str] | None = None
    """``{"mode", "path"}`` when a custom Dockerfile took part (docs/reference.md §7)."""
    previous_image: ReportedPrevious | None = None
    """Set when a previous image was read."""
    cache_image: ReportedCache | None = None
    """Set with ``--cache-image``."""

    def to_json(self) -> dict[str, Any]:
        """The ``build --json`` document."""
        return {
            "image": self.image,
            "tags": list(self.tags),
            "digest": self.digest,
            "config_digest": self.config_digest,
            "layers": [layer.to_json() for layer in self.layers],
            "processes": [p._asdict() for p in self.processes],
            "timings": dict(self.timings),
            "unchanged": self.unchanged,
            **({"pushed": list(self.pushed)} if self.pushed else {}),
            **({"dockerfile": dict(self.dockerfile)} if self.dockerfile else {}),
            **({"previous_image": self.previous_image.to_json()} if self.previous_image
               else {}),
            **({"cache_image": self.cache_image.to_json()} if self.cache_image else {}),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BuildReport:
        """Parse :meth:`to_json`'s output; raises KeyError, TypeError or ValueError."""
        return cls(
            image=str(data["image"]),
            tags=tuple(str(t) for t in data["tags"]),
            digest=str(data["digest"]),
            config_digest=str(data["config_digest"]),
            layers=tuple(ExportedLayer.from_json(la) for la in data["layers"]),
            processes=tuple(ReportedProcess(str(p["name"]), str(p["event"]), bool(p["default"]))
                            for p in data["processes"]),
            timings={str(k): float(v) for k, v in (data.get("timings") or {}).items()},
            unchanged=bool(data.get("unchanged", False)),
            pushed=tuple(str(r) for r in data.get("pushed") or ()),
            dockerfile=({str(k): str(v) for k, v in data["dockerfile"].items()}
                        if data.get("dockerfile") else None),
            previous_image=(ReportedPrevious.from_json(data["previous_image"])
                            if data.get("previous_image") else None),
            cache_image=(ReportedCache.from_json(data["cache_image"])
                         if data.get("cache_image") else None),
        )

    def answered_from_receipt(self, seconds: float) -> BuildReport:
        """This report as a no-change rebuild prints it: no phase ran."""
        return self._replace(unchanged=True,
                             timings={"detect": 0.0, "build": 0.0, "export": 0.0,
                                      "receipt": round(seconds, 3)})


class PushReport(NamedTuple):
    """What one ``push`` did: the source, the destinations and the references pinned by digest."""

    source: str
    image: str
    tags: tuple[str, ...]
    digest: str
    pushed: tuple[str, ...]
    """Registry references written, pinned by digest; empty when no sink is a registry."""

    def to_json(self) -> dict[str, Any]:
        """The ``push --json`` document."""
        return {"source": self.source, "image": self.image, "tags": list(self.tags),
                "digest": self.digest, "pushed": list(self.pushed)}
