"""Every stack this machine knows: the built-in files and the user's own.

Built-in stacks are the ``*.toml`` files shipped in this package. User stacks live in
``$XDG_CONFIG_HOME/hybridless/stacks/`` (else ``~/.config/hybridless/stacks/``); a user file
with a built-in stack's id replaces that stack, so a site can point a stack at its own mirror.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lifecycle.errors import BaseImageNotFound
from stacks.model import Stack, load_file
from stacks.runtimes import Runtime

BUILTIN_DIR = Path(__file__).parent


def user_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where user stack files live: ``$XDG_CONFIG_HOME/hybridless/stacks``."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "hybridless" / "stacks"


@dataclass(frozen=True)
class Catalog:
    """The known stacks, sorted by id."""

    stacks: tuple[Stack, ...]

    def ids(self) -> list[str]:
        """Every stack id."""
        return [stack.id for stack in self.stacks]

    def get(self, stack_id: str) -> Stack:
        """The stack ``stack_id``; exit 30 listing the known ids when there is none."""
        for stack in self.stacks:
            if stack.id == stack_id:
                return stack
        raise BaseImageNotFound(
            f"failed to find stack {stack_id!r}: no built-in or user stack has that id",
            hint=f"known stacks: {', '.join(self.ids())} (see `hybridless-lifecycle stacks "
            f"list`; user stacks go in {user_dir()})",
        )

    def serving(self, runtime: Runtime) -> list[Stack]:
        """The stacks that serve ``runtime``: recipe stacks first (they build offline), by id."""
        found = [stack for stack in self.stacks if stack.serves(runtime)]
        return sorted(found, key=lambda s: (s.run_image.recipe is None, s.id))


def load(environ: Mapping[str, str] | None = None, *, builtin_dir: Path = BUILTIN_DIR) -> Catalog:
    """Read every built-in and user stack file; a user file overrides a built-in id."""
    by_id: dict[str, Stack] = {}
    for directory in (builtin_dir, user_dir(environ)):
        # A file's name is its stack's id (checked on load), so ids are unique per directory.
        for path in sorted(directory.glob("*.toml")) if directory.is_dir() else ():
            stack = load_file(path)
            by_id[stack.id] = stack
    return Catalog(tuple(sorted(by_id.values(), key=lambda s: s.id)))
