"""One process per function: the shim under ``python3`` with the Hybridless environment."""

from __future__ import annotations

from collections.abc import Iterable

from lifecycle.descriptor import Descriptor, Function
from lifecycle.functions import hybridless_env
from lifecycle.hookspecs import Layer, Process

SHIM_COMMAND = ("python3", "-m", "hybridless_shim")
TASK_ROOT = "/var/task"


def python_path(shim: Layer, deps: Layer | None) -> str:
    """The shim first, then the dependencies; the shim puts the task root before both."""
    parts = [shim.image_path]
    if deps is not None:
        parts.append(f"{deps.image_path}/site-packages")
    return ":".join(parts)


def processes(functions: Iterable[Function], descriptor: Descriptor, shim: Layer,
              deps: Layer | None) -> tuple[Process, ...]:
    """The image's processes, each with docs/reference.md §4 defaults plus the Python paths."""
    path = python_path(shim, deps)
    built = []
    for fn in functions:
        defaults = hybridless_env(fn, descriptor, language="python")
        # setdefault: a function's own ``environment`` (already in ``defaults``) wins.
        defaults.setdefault("PYTHONPATH", path)
        defaults.setdefault("PYTHONUNBUFFERED", "1")
        defaults.setdefault("LAMBDA_TASK_ROOT", TASK_ROOT)
        built.append(Process(name=fn.name, command=SHIM_COMMAND, event=fn.event,
                             defaults=defaults, default=fn.default))
    return tuple(built)
