"""The recipe stacks the tests share: built once into a store cached on disk."""

from __future__ import annotations

from pathlib import Path

from lifecycle.errors import LifecycleError
from lifecycle.image.transports.store import Store
from stacks import builder, catalog, recipe
from tests.infra.services import ServiceUnavailable

SHARED_STACKS = ("debian-bookworm-nodejs", "debian-trixie-python")


def build_stack_home(home: Path, stack_ids: tuple[str, ...]) -> Path:
    """Make sure ``home``'s store holds the run and build images of each stack; return ``home``.

    Builds on a stack run in its build image when a Docker engine answers (``--executor
    auto``), so the build images are made here once rather than by each test's first build.
    """
    reason = recipe.unable_reason()
    if reason is not None:
        raise ServiceUnavailable(reason)
    known = catalog.load({"XDG_CONFIG_HOME": str(home / "no-user-stacks")})
    store = Store(home)
    wanted = set()
    for stack_id in stack_ids:
        build, run = builder.recipe_images(known.get(stack_id))
        assert run is not None and build is not None, f"{stack_id} has no recipe images"
        for role, image in (("run", run), ("build", build)):
            try:
                builder.ensure(image, store)
            except LifecycleError as error:
                raise RuntimeError(f"failed to build the {stack_id} {role} image: "
                                   f"{error}") from error
            wanted.add(image.store_name)
    for stale in store.images():
        if stale.reference.startswith(recipe.STORE_REPOSITORY) and stale.reference not in wanted:
            store.remove(stale.reference)
    store.gc()
    return home
