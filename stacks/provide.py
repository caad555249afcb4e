"""Get a stack's images into the local store: build recipes, pull references.

``build`` on a machine whose store lacks the chosen stack's run image does the first of these
that works: builds it when mmdebstrap can run (saying so; once), pulls it when it is a
reference, or exits 30 naming both ways.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lifecycle.errors import BaseImageFetchError, BaseImageNotFound
from lifecycle.image import transports
from lifecycle.image.image import Image
from lifecycle.image.reference import Reference, parse
from lifecycle.image.transports.store import Store
from stacks import builder, recipe
from stacks.model import ImageSpec, Stack

if TYPE_CHECKING:
    from lifecycle.image.transports.registry import RegistryOptions

log = logging.getLogger("hybridless.stacks")


@dataclass(frozen=True)
class StackImage:
    """One of a stack's two images as the local store knows it."""

    role: str
    """``build`` or ``run``."""
    store_name: str
    """Where it is (or will be) in the local store."""
    source: str
    """``recipe <suite>`` or the reference it is pulled from."""


def images_of(stack: Stack) -> tuple[StackImage, StackImage]:
    """The stack's (build, run) images with their store names."""
    build, run = builder.recipe_images(stack)
    return (
        _describe(stack, "build", stack.build_image, build),
        _describe(stack, "run", stack.run_image, run),
    )


def present(stack: Stack, store: Store) -> dict[str, bool]:
    """Whether each of the stack's images is in the store: ``{"build": …, "run": …}``."""
    tags = set(store.layout.tags()) if store.layout.exists() else set()
    return {image.role: image.store_name in tags for image in images_of(stack)}


def ensure(stack: Stack, store: Store, *, roles: tuple[str, ...] = ("build", "run"),
           refresh: bool = False) -> list[builder.Outcome]:
    """Build the stack's recipe images named by ``roles`` (refusing reference stacks)."""
    outcomes = []
    for role, image in zip(("build", "run"), builder.recipe_images(stack), strict=True):
        if role not in roles:
            continue
        if image is None:
            spec = stack.build_image if role == "build" else stack.run_image
            raise BaseImageNotFound(
                f"failed to build stack {stack.id}: its {role} image is the reference "
                f"{spec.reference}, not a recipe",
                hint=f"fetch it with `hybridless-lifecycle stacks pull {stack.id}`",
            )
        outcomes.append(builder.ensure(image, store, refresh=refresh))
    return outcomes


def pull(stack: Stack, store: Store, *, roles: tuple[str, ...] = ("build", "run"),
         registry: RegistryOptions | None = None) -> list[str]:
    """Copy the stack's reference images into the store; return their store names.

    ``registry`` carries the command line's registry options (``--insecure-registry``,
    ``--ca-bundle``); ``registries.toml`` and its mirrors apply either way.
    """
    pulled = []
    read: dict[str, Image] = {}
    for image in images_of(stack):
        if image.role not in roles:
            continue
        if image.source.startswith("recipe "):
            raise BaseImageNotFound(
                f"failed to pull stack {stack.id}: its {image.role} image is a {image.source}, "
                "built here rather than pulled",
                hint=f"build it with `hybridless-lifecycle stacks build {stack.id}`",
            )
        # Most reference stacks name one image for both roles: pull it once.
        if image.source not in read:
            read[image.source] = _read_reference(stack, image.source, registry)
        store.write(read[image.source], [image.store_name])
        pulled.append(image.store_name)
    return pulled


def run_image(stack: Stack, store: Store, *,
              registry: RegistryOptions | None = None) -> tuple[Reference, Image]:
    """The stack's run image from the store, building or pulling it first when missing."""
    return _stored_image(stack, store, "run", registry)


def build_image(stack: Stack, store: Store, *,
                registry: RegistryOptions | None = None) -> tuple[Reference, Image]:
    """The stack's build image from the store, building or pulling it first when missing."""
    return _stored_image(stack, store, "build", registry)


def build_image_name(stack: Stack) -> str:
    """The build image's store name, which is also its name in the Docker engine."""
    return images_of(stack)[0].store_name


def _stored_image(stack: Stack, store: Store, role: str,
                  registry: RegistryOptions | None) -> tuple[Reference, Image]:
    build, run = images_of(stack)
    wanted = build if role == "build" else run
    spec = stack.build_image if role == "build" else stack.run_image
    ref = parse(wanted.store_name)
    try:
        return ref, store.read(ref, stack.platform)
    except BaseImageNotFound:
        pass
    if spec.recipe is not None:
        reason = recipe.unable_reason()
        if reason is not None:
            raise BaseImageNotFound(
                f"failed to find stack {stack.id}'s {role} image in the local store, and it "
                f"cannot be built here: {reason}",
                hint="either make mmdebstrap runnable (install it; run as root or give this "
                "user subordinate ids) and build again, or pull a reference stack "
                "(`hybridless-lifecycle stacks pull ID`, then --stack ID), or pass "
                "--run-image REF" + (" or --executor local" if role == "build" else ""),
            )
        log.info("stack %s is not in the local store: building its %s image now", stack.id,
                 role)
        ensure(stack, store, roles=(role,))
    else:
        log.info("stack %s is not in the local store: pulling %s", stack.id, wanted.source)
        try:
            pull(stack, store, roles=(role,), registry=registry)
        except BaseImageFetchError as error:
            raise BaseImageNotFound(
                f"failed to find stack {stack.id}'s {role} image in the local store, and "
                f"pulling it failed: {error.message}",
                hint="build on a recipe stack instead (e.g. --stack debian-bookworm-nodejs, "
                "built here by mmdebstrap), or pass --run-image REF",
            ) from error
    return ref, store.read(ref, stack.platform)


def _describe(stack: Stack, role: str, spec: ImageSpec,
              made: recipe.RecipeImage | None) -> StackImage:
    if made is not None:
        return StackImage(role, made.store_name, f"recipe {made.recipe.suite}")
    assert spec.reference is not None  # the model holds exactly one of the two
    # The reference's hash in the name: pointing the stack elsewhere never reuses a copy.
    key = hashlib.sha256(spec.reference.encode()).hexdigest()[:12]
    return StackImage(role, f"{recipe.STORE_REPOSITORY}/{stack.id}-{role}:{key}", spec.reference)


def _read_reference(stack: Stack, text: str, registry: RegistryOptions | None) -> Image:
    # A docker:// reference goes through the registry client: registries.toml (mirrors,
    # endpoints, CA files), the usual credential files, and the command's registry options.
    # Registry failures keep their own exit codes (70-72); an index without the stack's
    # platform is exit 30.
    found = transports.read_image(parse(text), platform=stack.platform, registry=registry)
    # A single-platform manifest is taken as it is, whatever its platform: check it here, so
    # that a stack never stores an image its builds would refuse later.
    have = "/".join(found.platform.split("/")[:2])
    if have != "/".join(stack.platform.split("/")[:2]):
        raise BaseImageNotFound(
            f"failed to pull stack {stack.id}: {text} is a {found.platform} image, and the "
            f"stack is {stack.platform}",
            hint=f"point the stack's reference at a {stack.platform} image (or an index that "
            "has one), or change its platform",
        )
    return found
