"""Turn a stack's recipes into images in the local store, with the engine's own image writer.

The root filesystem tar from mmdebstrap becomes one gzip layer (:mod:`lifecycle.image.tarball`),
the layer an image (:mod:`lifecycle.image`), the image a store entry. Building is idempotent
per recipe: an image already stored under the recipe's name is kept, and with ``refresh`` it
is rebuilt only when the sources' Release dates moved since it was built.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lifecycle.errors import BaseImageFetchError, BaseImageNotFound
from lifecycle.image import image as images
from lifecycle.image.image import DirectorySource, Image, Layer
from lifecycle.image.tarball import read_blocks, write_tar_layer
from lifecycle.image.transports.store import Store
from lifecycle.phases import label
from stacks import recipe as recipes
from stacks import release
from stacks.model import Stack
from stacks.recipe import RecipeImage

log = logging.getLogger("hybridless.stacks")

STACK_LABEL = label.STACK_LABEL
RECIPE_LABEL = "io.hybridless.stack.recipe"
EPOCH_LABEL = "io.hybridless.stack.source-date-epoch"
WORKDIR = "/var/task"
PATH_ENV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Outcome:
    """What ``ensure`` did for one image."""

    ref: str
    """The store reference of the image."""
    digest: str
    built: bool
    """False when the stored image was kept."""
    seconds: float
    epoch: int | None
    """The ``SOURCE_DATE_EPOCH`` it was built with, when known."""


def recipe_images(stack: Stack) -> tuple[RecipeImage | None, RecipeImage | None]:
    """The stack's (build, run) images that are recipes; ``None`` for references."""
    build = stack.build_image.recipe
    run = stack.run_image.recipe
    return (
        RecipeImage(build, stack.user, "build", stack.platform, None) if build else None,
        RecipeImage(run, stack.user, "run", stack.platform, stack.id) if run else None,
    )


def stored(image: RecipeImage, store: Store) -> Image | None:
    """The stored image for this recipe, or ``None``."""
    try:
        return store.read(image.store_name, image.platform)
    except BaseImageNotFound:
        return None


def ensure(
    image: RecipeImage,
    store: Store,
    *,
    refresh: bool = False,
    say: Callable[[str], None] = log.info,
) -> Outcome:
    """Make sure the store holds ``image``; build it when missing (or stale, with ``refresh``)."""
    started = time.monotonic()
    found = stored(image, store)
    if found is not None and not refresh:
        return Outcome(image.store_name, found.digest, False, 0.0, _epoch_of(found))
    dates = release.fetch(image.recipe)
    if found is not None and _epoch_of(found) == dates.epoch:
        say(f"{image.store_name} is up to date (sources last changed at {dates.epoch})")
        return Outcome(image.store_name, found.digest, False, 0.0, dates.epoch)
    say(f"building {image.store_name} with mmdebstrap from {image.recipe.suite}, "
        f"{image.recipe.suite}-updates and {image.recipe.suite}-security "
        f"(SOURCE_DATE_EPOCH={dates.epoch}; about a minute, once)")
    digest = build(image, dates.epoch, store)
    seconds = time.monotonic() - started
    say(f"built {image.store_name} ({digest[:19]}) in {seconds:.0f} s")
    return Outcome(image.store_name, digest, True, seconds, dates.epoch)


def build(image: RecipeImage, epoch: int, store: Store) -> str:
    """Build ``image`` with ``SOURCE_DATE_EPOCH=epoch`` and store it; return its digest."""
    store.home.mkdir(parents=True, exist_ok=True)
    # Beside the store, so the layer blob is hard-linked into it rather than copied.
    work = Path(tempfile.mkdtemp(prefix=".stack-build-", dir=store.home))
    try:
        rootfs = work / "rootfs.tar"
        recipes.build_rootfs(image, rootfs, epoch, work / "mmdebstrap.log")
        blob = write_tar_layer(read_blocks(rootfs), work / "blobs")
        rootfs.unlink()
        layer = Layer(blob.digest, blob.diff_id, blob.size, blob.media_type,
                      DirectorySource(work / "blobs"))
        made = configure(image, layer, epoch)
        return store.write(made, [image.store_name])
    except BaseImageFetchError as error:
        # Keep the log for the user: the error's hint points at it.
        kept = store.home / f"stack-build-{image.recipe.suite}-{image.role}.log"
        if (work / "mmdebstrap.log").exists():
            shutil.copyfile(work / "mmdebstrap.log", kept)
            raise BaseImageFetchError(error.message, hint=f"see mmdebstrap's log in {kept}") \
                from error
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def configure(image: RecipeImage, layer: Layer, epoch: int) -> Image:
    """The image holding ``layer``: the stack's user, ``/var/task``, labels, time ``epoch``."""
    os_name, architecture = image.platform.split("/")[:2]
    variant = image.platform.split("/")[2] if image.platform.count("/") == 2 else None
    base = images.empty(os_name, architecture, variant=variant)
    created = images.created_from_epoch(epoch)
    labels = {RECIPE_LABEL: image.key, EPOCH_LABEL: str(epoch)}
    if image.stack_id is not None:
        labels[STACK_LABEL] = image.stack_id
    layered = images.append_layers(
        images.with_config(base, created=created),
        [layer],
        history=[f"mmdebstrap {image.recipe.suite} ({', '.join(image.recipe.packages)})"],
    )
    return images.with_config(
        layered,
        env={"PATH": PATH_ENV, "LANG": "C.UTF-8"},
        user=image.user.spec,
        working_dir=WORKDIR,
        labels=labels,
    )


def _epoch_of(found: Image) -> int | None:
    value = found.labels.get(EPOCH_LABEL, "")
    return int(value) if value.isdigit() else None
