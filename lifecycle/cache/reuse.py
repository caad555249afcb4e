"""Reuse across machines for one build: which images to read, in which order, and the report.

The build pipeline calls :func:`restore` after choosing the executor (records carry it) and
before the buildpacks run, and :func:`write_cache` after the app image is written. The
sources are :mod:`lifecycle.cache.cacheimage` (files and records of ``cache`` layers) and
:mod:`lifecycle.cache.previous` (records of launch layers, blobs left in the registry).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lifecycle.cache import cacheimage, previous, remote
from lifecycle.cache.cacheimage import Written
from lifecycle.cache.layers import BlobInfo, ProjectCache
from lifecycle.cache.previous import Restored
from lifecycle.image.image import BlobSource
from lifecycle.image.reference import Reference, parse
from lifecycle.phases.report import ReportedCache, ReportedPrevious

if TYPE_CHECKING:
    from lifecycle.image.transports.registry import RegistryOptions


@dataclass(frozen=True)
class Reuse:
    """What a build restored from its previous image and its cache image, and wrote."""

    previous: Restored | None = None
    """None when no previous image was read."""
    cached: Restored | None = None
    """None when no cache image was read."""
    cache_image: Reference | None = None
    written: Written | None = None
    """The cache image, once written."""

    def reported_previous(self) -> ReportedPrevious | None:
        """The report's ``previous_image``."""
        if self.previous is None:
            return None
        return ReportedPrevious(self.previous.image, self.previous.layers)

    def reported_cache(self) -> ReportedCache | None:
        """The report's ``cache_image``."""
        if self.cache_image is None:
            return None
        written = self.written
        return ReportedCache(str(self.cache_image),
                             self.cached.layers if self.cached is not None else (),
                             written.digest if written is not None else None,
                             written.layers if written is not None else (),
                             written.error if written is not None else None)


def previous_reference(given: str | None, dest: Reference, per_function: bool
                       ) -> Reference | None:
    """``--previous-image``, else the destination when it is a registry and named plainly.

    With Hybridless naming each function has a repository of its own: the default is then
    :func:`lifecycle.phases.publish.previous_of_functions`'s.
    """
    if given is not None:
        return parse(given)
    if dest.transport != "docker" or per_function:
        return None
    return dest


def restore(previous_ref: Reference | None, cache_ref: Reference | None, project: ProjectCache,
            group: Sequence[str], stack: str | None, platform: str, mtime: int,
            registry: RegistryOptions | None, log: logging.Logger) -> Reuse:
    """Restore records from the cache image, then from the previous image.

    The cache image goes first: it brings a layer's files too, which a record restored from
    the previous image's label cannot, and a record already there is never replaced.
    """
    cached = prior = None
    if cache_ref is not None:
        found = remote.read(cache_ref, platform=platform, registry=registry,
                            into=project.blobs, what="cache image", log=log)
        cached = (cacheimage.restore(found, project, group, stack, mtime, log)
                  if found is not None
                  else Restored(str(cache_ref), ()))
    if previous_ref is not None:
        found = remote.read(previous_ref, platform=platform, registry=registry,
                            into=project.blobs, what="previous image", log=log)
        prior = (previous.restore(found, project, group, stack, log) if found is not None
                 else Restored(str(previous_ref), ()))
    return Reuse(prior, cached, cache_ref)


def write_cache(reuse: Reuse, project: ProjectCache, group: Sequence[str], stack: str | None,
                platform: str, mtime: int, registry: RegistryOptions | None,
                log: logging.Logger) -> Reuse:
    """Write the cache image when the build has one; ``reuse`` with what was written."""
    if reuse.cache_image is None:
        return reuse
    written = cacheimage.write(reuse.cache_image, project, group, stack, platform, mtime,
                               registry, log)
    return dataclasses.replace(reuse, written=written)


def remote_blobs(project: ProjectCache, registry: RegistryOptions | None
                 ) -> Callable[[str, BlobInfo], BlobSource]:
    """Where export reads a layer reused from a previous image: its registry repository,
    fetched into the project's blobs only if a sink needs the bytes."""
    from lifecycle.image.transports.registry import RegistryOptions, RemoteBlobs

    options = registry or RegistryOptions()

    def source(origin: str, blob: BlobInfo) -> BlobSource:
        return RemoteBlobs(origin, ((blob.digest, blob.size),), project.blobs, options)

    return source
