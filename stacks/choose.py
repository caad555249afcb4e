"""Which stack a build uses, and why (CONTRACT §6).

Weakest first: the default stack of the runtime the buildpacks detected, the descriptor's
``stack``, ``--stack``, ``--run-image``. A runtime's default is the first recipe stack that
serves it, since recipe stacks build on this machine with no registry; a runtime that only
reference stacks serve (python3.10, python3.12) must be asked for by name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lifecycle.errors import BaseImageNotFound
from stacks.catalog import Catalog
from stacks.model import Stack
from stacks.runtimes import Runtime, parse_runtime


@dataclass(frozen=True)
class Choice:
    """The stack chosen (``None`` with a bare ``--run-image``) and the reason, for the log."""

    stack: Stack | None
    reason: str


def detected_runtime(
    function_runtimes: Iterable[str | None],
    plan: Iterable[tuple[str, Mapping[str, Any]]],
    buildpack_ids: Iterable[str],
    known: Catalog,
) -> Runtime | None:
    """The runtime a build asks for: a function's ``runtime``, the plan's Node major, or the
    family of a buildpack in the group (``hybridless/python`` → python); ``None`` when unknown.
    """
    for text in function_runtimes:
        if text:
            try:
                return parse_runtime(text)
            except ValueError:
                continue  # "container", "go": runtimes no stack serves by name
    for name, metadata in plan:
        if name == "node":
            major = metadata.get("major")
            return Runtime("nodejs", (int(major),) if isinstance(major, int) else ())
    families = {entry.family for stack in known.stacks for entry in stack.runtimes}
    for buildpack_id in buildpack_ids:
        family = buildpack_id.rsplit("/", 1)[-1]
        if family in families:
            return Runtime(family, ())
    return None


def choose(
    known: Catalog,
    runtime: Runtime | None,
    *,
    descriptor_stack: str | None = None,
    cli_stack: str | None = None,
    run_image: str | None = None,
) -> Choice:
    """Apply the order of strength; exit 30 when the chosen stack cannot serve ``runtime``."""
    if run_image is not None:
        return Choice(None, f"--run-image {run_image} was given (it overrides any stack)")
    if cli_stack is not None:
        return Choice(_serving(known.get(cli_stack), runtime, known), f"--stack {cli_stack}")
    if descriptor_stack is not None:
        stack = _serving(known.get(descriptor_stack), runtime, known)
        return Choice(stack, f"the descriptor's stack = {descriptor_stack!r}")
    if runtime is None:
        raise BaseImageNotFound(
            "failed to choose a stack: the detected buildpacks name no runtime a stack serves",
            hint="pass --stack ID (see `hybridless-lifecycle stacks list`) or --run-image REF",
        )
    serving = known.serving(runtime)
    recipes = [stack for stack in serving if stack.run_image.recipe is not None]
    if not recipes:
        raise BaseImageNotFound(
            f"failed to choose a stack for {runtime}: no Debian recipe stack has it",
            hint=_served_by(runtime, serving),
        )
    return Choice(recipes[0], f"the default stack for the detected runtime {runtime}")


def _serving(stack: Stack, runtime: Runtime | None, known: Catalog) -> Stack:
    if runtime is None or stack.serves(runtime):
        return stack
    raise BaseImageNotFound(
        f"failed to use stack {stack.id} for {runtime}: it serves "
        f"{', '.join(str(entry) for entry in stack.runtimes)}",
        hint=_served_by(runtime, known.serving(runtime)),
    )


def _served_by(runtime: Runtime, serving: list[Stack]) -> str:
    if not serving:
        return f"no stack serves {runtime}; pass --run-image REF with a base image that has it"
    names = ", ".join(stack.id for stack in serving)
    return f"stacks that serve {runtime}: {names}; pass --stack ID"
