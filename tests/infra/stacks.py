"""The recipe stacks the tests share: built once into a store cached on disk."""

from __future__ import annotations

from pathlib import Path

from lifecycle.errors import LifecycleError
from lifecycle.image.transports.store import Store
from stacks import builder, catalog, recipe
from tests.infra.services import ServiceUnavailable

SHARED_STACKS = ("debian-bookworm-nodejs", "debian-trixie-python")


def build_stack_home(home: Path, stack_ids: tuple[str, ...]) -> Path:
    """Make sure ``home``'s store holds the run image of each stack; return ``home``."""
    reason = recipe.unable_reason()
    if reason is not None:
        raise ServiceUnavailable(reason)
    known = catalog.load({"XDG_CONFIG_HOME": str(home / "no-user-stacks")})
    store = Store(home)
    wanted = set()
    for stack_id in stack_ids:
        _, run = builder.recipe_images(known.get(stack_id))
        assert run is not None, f"{stack_id} has no recipe run image"
        try:
            builder.ensure(run, store)
        except LifecycleError as error:
            raise RuntimeError(f"failed to build the {stack_id} run image: {error}") from error
        wanted.add(run.store_name)
    for stale in store.images():
        if stale.reference.startswith(recipe.STORE_REPOSITORY) and stale.reference not in wanted:
            store.remove(stale.reference)
    store.gc()
    return home
