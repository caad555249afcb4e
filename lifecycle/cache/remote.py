"""Reading the images a build reuses from: ``--previous-image`` and ``--cache-image``.

Both are optional inputs: an image that does not exist yet (the first build of a project) is
None, not an error. A registry image is read lazily (manifest and config only); its layers
are fetched into the build cache's blobs, digest-checked, only when something opens them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lifecycle.errors import BaseImageNotFound
from lifecycle.image import image as model
from lifecycle.image import transports
from lifecycle.image.blobs import CHUNK, BlobDir
from lifecycle.image.reference import Reference

if TYPE_CHECKING:
    from lifecycle.image.transports.registry import RegistryOptions


@dataclass(frozen=True)
class ReadImage:
    """An image read for reuse, with the registry repository its blobs stay in."""

    ref: Reference
    image: model.Image

    @property
    def repository(self) -> str | None:
        """``HOST/REPO`` whose blobs a registry image's layers are, fetched only on demand;
        None when the layers are local (any other transport)."""
        from lifecycle.image.transports.registry import RemoteBlobs

        sources = {layer.source.repository for layer in self.image.layers
                   if isinstance(layer.source, RemoteBlobs)}
        return next(iter(sources), None)

    def layer_by_diff_id(self) -> Mapping[str, model.Layer]:
        """The image's layers keyed by DiffID."""
        return {layer.diff_id: layer for layer in self.image.layers}

    def fetch(self, layer: model.Layer, into: BlobDir) -> None:
        """Put ``layer``'s blob into ``into``, checked against its digest."""
        if into.has(layer.digest):
            return
        with layer.open() as stream:
            into.put_stream(iter(lambda: stream.read(CHUNK), b""), layer.digest)


def read(ref: Reference, *, platform: str | None, registry: RegistryOptions | None,
         into: BlobDir, what: str, log: logging.Logger) -> ReadImage | None:
    """The image ``ref`` names, or None (logged) when it does not exist."""
    if ref.transport == "docker":
        from lifecycle.image.transports.registry import read_lazy

        found = read_lazy(ref, platform, into, registry)
        if found is None:
            log.info("%s %s does not exist yet: nothing to reuse", what, ref)
            return None
        return ReadImage(ref, found)
    try:
        found = transports.read_image(ref, platform=platform)
    except BaseImageNotFound:
        log.info("%s %s does not exist yet: nothing to reuse", what, ref)
        return None
    return ReadImage(ref, found)
