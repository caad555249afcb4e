"""Give ``run`` and ``invoke`` an image the engine holds, whatever reference they were given.

A ``docker-daemon:NAME:TAG`` reference is used as it is. Any other reference (the local store,
``oci:``, archives, ``docker://``) is read through its transport and, when the engine lacks
that image, loaded through the ``docker-daemon:`` sink, which sends only the layers the engine
does not already have. The engine knows the image afterwards under a name said on stderr.
"""

from __future__ import annotations

import logging
from typing import Any

from lifecycle.image import reference, transports
from lifecycle.image.reference import Reference

log = logging.getLogger("hybridless.run")

# The engine name of images from references that carry none (oci:, oci-archive:).
_UNNAMED = "hybridless-run"


def engine_reference(
    client: Any, text: str, *, platform: str | None = None, registry: Any = None
) -> str:
    """Return what the engine calls the image ``text`` names, loading it there if needed."""
    ref = reference.parse(text)
    if ref.transport == "docker-daemon":
        return ref.store_name
    image = transports.read_image(ref, platform=platform, registry=registry)
    name = engine_name(ref, image.digest)
    if _engine_has(client, name, (image.config_digest, image.digest)):
        log.debug("the Docker engine already has %s as %s", ref, name)
        return name
    log.info("loading %s into the Docker engine as %s", ref, name)
    transports.write_image(image, reference.parse(f"docker-daemon:{name}"), progress=log.debug)
    return name


def engine_name(ref: Reference, digest: str) -> str:
    """The ``NAME:TAG`` the engine gets for ``ref``: its own name where it has one."""
    short = digest.removeprefix("sha256:")[:12]
    if ref.transport == "docker":
        tag = ref.tag if ref.tag and not ref.digest else short
        return f"{ref.host}/{ref.name}:{tag}"
    if ref.transport in ("store", "docker-archive") and ref.name:
        return ref.store_name
    return f"{_UNNAMED}:{short}"


def _engine_has(client: Any, name: str, ids: tuple[str, str]) -> bool:
    """Whether the engine's ``name`` is this very image (by config or manifest digest)."""
    import docker.errors

    try:
        found = client.images.get(name)
    except docker.errors.ImageNotFound:
        return False
    # The classic image store calls an image by its config digest, containerd's by manifest.
    return str(found.id) in ids
