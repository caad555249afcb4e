"""Imports the user's handler once, at start, the way the Lambda Python runtime does."""

from __future__ import annotations

import importlib
import inspect
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

HandlerFunc = Callable[[Any, Any], Any]


class HandlerLoadError(Exception):
    """The handler could not be imported; carries the error type Lambda would report."""

    def __init__(self, error_type: str, message: str, stack: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.stack = stack or []


@dataclass(frozen=True)
class Handler:
    """A loaded handler and how it must be called."""

    func: HandlerFunc
    is_async: bool
    name: str = field(default="handler")


def module_name(entrypoint: str) -> str:
    """``app/handler`` (or ``app/handler.py``, ``./app/handler``) → ``app.handler``."""
    path = entrypoint.strip().replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    if path.endswith(".py"):
        path = path[:-3]
    return ".".join(part for part in path.split("/") if part)


def is_coroutine_callable(func: Any) -> bool:
    """True when calling ``func`` returns a coroutine (``async def`` or an async ``__call__``)."""
    if inspect.iscoroutinefunction(func):
        return True
    call = getattr(func, "__call__", None)  # noqa: B004 - the bound method itself is needed
    return call is not None and inspect.iscoroutinefunction(call)


def load_handler(task_root: str, entrypoint: str, func_name: str) -> Handler:
    """Import ``entrypoint`` from ``task_root`` and return its ``func_name``, or raise."""
    if task_root in sys.path:
        sys.path.remove(task_root)
    # The task root comes first, before the dependency layer, as it does on Lambda.
    sys.path.insert(0, task_root)
    name = module_name(entrypoint)
    if not name or not func_name:
        raise HandlerLoadError(
            "Runtime.MalformedHandlerName",
            f"Bad handler '{entrypoint}.{func_name}': expected <module path>.<function>",
        )
    try:
        module = importlib.import_module(name)
    except SyntaxError as exc:
        raise HandlerLoadError(
            "Runtime.UserCodeSyntaxError",
            f"Syntax error in module '{name}': {exc}",
            _stack(exc),
        ) from exc
    except ImportError as exc:
        raise HandlerLoadError(
            "Runtime.ImportModuleError",
            f"Unable to import module '{name}': {exc}",
            _stack(exc),
        ) from exc
    except Exception as exc:
        raise HandlerLoadError(
            type(exc).__name__,
            f"Unable to import module '{name}': {type(exc).__name__}: {exc}",
            _stack(exc),
        ) from exc
    func = getattr(module, func_name, None)
    if func is None:
        raise HandlerLoadError(
            "Runtime.HandlerNotFound", f"Handler '{func_name}' missing on module '{name}'"
        )
    if not callable(func):
        raise HandlerLoadError(
            "Runtime.HandlerNotFound", f"Handler '{func_name}' on module '{name}' is not callable"
        )
    return Handler(func=func, is_async=is_coroutine_callable(func), name=f"{name}.{func_name}")


def _stack(exc: BaseException) -> list[str]:
    return [line.rstrip("\n") for line in traceback.format_tb(exc.__traceback__)]
