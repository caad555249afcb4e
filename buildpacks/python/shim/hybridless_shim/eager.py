"""Runs a coroutine's first step at once, before any Task exists (Python 3.11).

Most handler calls never wait on I/O. Python 3.12 starts such tasks eagerly by itself; on 3.11
a Task costs a loop iteration and several callbacks per call, which is a good share of a
trivial request. Here the first step runs inline, in its own context; only a coroutine that
really suspends gets a Task, which carries on from where the step stopped.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine
from typing import Any


class Done:
    """A coroutine that finished in its first step: its value or its exception."""

    __slots__ = ("error", "value")

    def __init__(self, value: Any = None, error: BaseException | None = None) -> None:
        self.value = value
        self.error = error


def step_first(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any]
) -> Done | asyncio.Task[Any]:
    """Run ``coro`` to its first suspension; Done if it finished, else the Task that resumes it."""
    context = contextvars.copy_context()
    try:
        waiting_on = context.run(coro.send, None)
    except StopIteration as stop:
        return Done(stop.value)
    except Exception as exc:
        return Done(error=exc)
    # The same context goes on with the Task, so context variables set so far survive.
    return loop.create_task(_resume(coro, waiting_on), context=context)  # type: ignore[call-arg]


async def _resume(coro: Coroutine[Any, Any, Any], waiting_on: Any) -> Any:
    """Drive ``coro`` on from a suspension, the way a Task would have."""
    while True:
        throw: BaseException | None = None
        try:
            if waiting_on is None:
                await asyncio.sleep(0)  # a bare yield: the coroutine gives the loop a turn
            elif asyncio.isfuture(waiting_on):
                waiting_on._asyncio_future_blocking = False
                # Wait without taking the result: the coroutine reads it when it resumes.
                await asyncio.wait((waiting_on,))
            else:
                throw = RuntimeError(f"a coroutine yielded {waiting_on!r}, not a future")
        except asyncio.CancelledError as cancel:
            # Cancelled (the invocation timed out): pass it on as a Task would.
            if waiting_on is not None and not waiting_on.done():
                waiting_on.cancel()
            else:
                throw = cancel
        try:
            waiting_on = coro.throw(throw) if throw is not None else coro.send(None)
        except StopIteration as stop:
            return stop.value
