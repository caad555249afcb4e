"""Sources and sinks behind one reference syntax: ``read_image`` and ``write_image``.

Each transport is one module exposing ``read(ref, platform) -> Image`` and
``write(image, refs, progress) -> digest``; adding a transport is adding its module to
``_MODULES``. Modules are imported on first use so start-up pays only for what it uses.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, cast

from lifecycle.errors import (
    BaseImageFetchError,
    BaseImageNotFound,
    ExportError,
    InvalidReference,
    LifecycleError,
)
from lifecycle.image.image import Image
from lifecycle.image.reference import VALID_FORMS, Reference

if TYPE_CHECKING:
    from lifecycle.image.transports.registry import RegistryOptions

DEFAULT_PLATFORM = "linux/amd64"

_MODULES = {
    "store": "lifecycle.image.transports.store",
    "oci": "lifecycle.image.transports.oci_layout",
    "oci-archive": "lifecycle.image.transports.oci_archive",
    "docker-archive": "lifecycle.image.transports.docker_archive",
    "docker-daemon": "lifecycle.image.transports.docker_daemon",
    # Registries take the command's registry options too: see read_image and write_image.
    "docker": "lifecycle.image.transports.registry",
}


class TransportModule(Protocol):
    """What a transport module provides."""

    def read(self, ref: Reference, platform: str) -> Image:
        """Read the image ``ref`` names, choosing ``platform`` from an index."""
        ...

    def write(
        self, image: Image, refs: Sequence[Reference], progress: Callable[[str], None] | None
    ) -> str:
        """Write ``image`` under every one of ``refs`` (one destination); return its digest."""
        ...


def transport_for(ref: Reference) -> TransportModule:
    """The module that reads and writes ``ref``'s transport."""
    name = _MODULES.get(ref.transport)
    if name is None:  # the parser admits only the transports above; a new one needs a module
        raise InvalidReference(
            f"failed to use image reference {str(ref)!r}: no module writes {ref.transport}:",
            hint=VALID_FORMS,
        )
    return cast(TransportModule, importlib.import_module(name))


def read_image(
    ref: Reference, *, platform: str | None = None, registry: RegistryOptions | None = None
) -> Image:
    """Read the image ``ref`` names; from an image index, take the ``platform`` manifest.

    Without ``platform``, a registry index gives this machine's platform (as docker picks)
    and local layouts give ``linux/amd64``.
    """
    module = transport_for(ref)
    try:
        if ref.transport == "docker":
            from lifecycle.image.transports import registry as remote

            return remote.read(ref, platform, registry)
        return module.read(ref, platform or DEFAULT_PLATFORM)
    except LifecycleError:
        raise
    except FileNotFoundError as error:
        raise BaseImageNotFound(f"failed to read image {ref}: {error}") from error
    except OSError as error:
        raise BaseImageFetchError(f"failed to read image {ref}: {error}") from error


def write_image(
    image: Image,
    ref: Reference,
    *,
    tags: Sequence[Reference] = (),
    progress: Callable[[str], None] | None = None,
    registry: RegistryOptions | None = None,
) -> str:
    """Write ``image`` to ``ref`` and to each of ``tags``; return the manifest digest.

    References to the same destination (one store, one layout, one archive file) are
    written together, so an archive gets every tag and blobs are copied once.
    """
    groups: dict[tuple[str, str], list[Reference]] = {}
    for target in (ref, *tags):
        transport_for(target)  # refuse an unsupported tag before writing anything
        where = os.path.abspath(target.path) if target.path else ""
        groups.setdefault((target.transport, where), []).append(target)
    for (transport, _), refs in groups.items():
        module = transport_for(refs[0])
        try:
            if transport == "docker":
                from lifecycle.image.transports import registry as remote

                remote.write(image, refs, progress, registry)
                continue
            module.write(image, refs, progress)
        except LifecycleError:
            raise
        except OSError as error:
            raise ExportError(
                f"failed to write image {refs[0]} ({transport}): {error}",
                hint="check that the destination is writable and has free space",
            ) from error
    return image.digest
