"""Runs invocations under a deadline: async handlers on the loop, sync ones in a bounded pool."""

from __future__ import annotations

import asyncio
import inspect
import os
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from .loader import Handler
from .log import log
from .payloads import format_stack
from .pool import WorkerPool


class Outcome:
    """How one invocation ended: a result, an error, or the deadline passing first."""

    __slots__ = ("error", "result", "stack", "timed_out")

    def __init__(
        self,
        result: Any = None,
        error: BaseException | None = None,
        stack: list[str] | None = None,
        timed_out: bool = False,
    ) -> None:
        self.result = result
        self.error = error
        self.stack = stack
        self.timed_out = timed_out

    @property
    def ok(self) -> bool:
        """True when the handler returned before its deadline."""
        return self.error is None and not self.timed_out


TIMED_OUT = Outcome(timed_out=True)
_new_outcome = object.__new__


def returned(result: Any) -> Outcome:
    """The outcome of a call that returned ``result``: what every answered request makes."""
    # Filling the slots directly skips __init__'s argument handling, once per request.
    outcome: Outcome = _new_outcome(Outcome)
    outcome.result = result
    outcome.error = outcome.stack = None
    outcome.timed_out = False
    return outcome


Done = Callable[[Outcome], None]
# 3.12+ can run a Task's first step at once (eager_start): a handler that never waits then
# finishes inside invoke(), with no trip around the loop. Before 3.12 the handler waits for
# the next loop turn; running its first step outside any Task would be cheaper, but then
# asyncio.current_task() is None and asyncio.timeout() or anyio raise in the handler.
EAGER_TASKS = sys.version_info >= (3, 12)


class _Invocation:
    """One invocation; ``finish`` delivers its outcome exactly once."""

    __slots__ = (
        "context", "deadline", "done", "event", "finished", "overdue", "released", "started",
        "task",
    )  # fmt: skip

    def __init__(self, event: Any, context: Any, deadline: float, done: Done) -> None:
        self.event = event
        self.context = context
        self.deadline = deadline
        self.done = done
        self.finished = False
        self.released = False
        # Holding a slot (started, not released); and counted in Invoker.stuck.
        self.started = False
        self.overdue = False
        self.task: asyncio.Task[Any] | None = None

    def finish(self, outcome: Outcome) -> None:
        if not self.finished:
            self.finished = True
            done = self.done
            # Finished invocations may wait in the deadline queue: keep them light.
            self.event = self.context = self.done = None  # type: ignore[assignment]
            done(outcome)


class Invoker:
    """Calls one handler, at most ``concurrency`` calls at a time, each within ``timeout_s``."""

    def __init__(self, handler: Handler, concurrency: int, timeout_s: float) -> None:
        self.handler = handler
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.inflight = 0
        # Invocations past their deadline whose handler still holds its slot.
        self.stuck = 0
        self._waiting: deque[_Invocation] = deque()
        # Every invocation gets the same timeout, so arrival order is deadline order: one
        # FIFO and one timer replace a timer per request.
        self._deadlines: deque[_Invocation] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pool: WorkerPool | None = None
        self._clock: Callable[[], float] = time.monotonic

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attach to the running loop; sync handlers get their pool here."""
        self._loop = loop
        # Deadlines are compared with loop.call_at() times. The default loops keep time with
        # time.monotonic(); calling it directly spares a Python frame per request.
        if getattr(type(loop), "time", None) is asyncio.BaseEventLoop.time:
            self._clock = time.monotonic
        else:
            self._clock = loop.time
        if not self.handler.is_async and self._pool is None:
            self._pool = WorkerPool(self.concurrency, loop)

    @property
    def wedged(self) -> bool:
        """True when every slot is held by a handler call that has run past its deadline."""
        return self.stuck >= self.concurrency

    @property
    def busy(self) -> int:
        """Invocations running or queued and not yet answered or released."""
        return self.inflight + sum(1 for inv in self._waiting if not inv.finished)

    def invoke(self, event: Any, context: Any, done: Done) -> None:
        """Run the handler on ``event``; ``done`` is called on the loop within the timeout."""
        loop = self._loop
        assert loop is not None, "Invoker.bind() must be called first"
        # The clock starts on arrival, so a request queued behind busy slots still gets its
        # 504 on time.
        inv = _Invocation(event, context, self._clock() + self.timeout_s, done)
        deadlines = self._deadlines
        while deadlines and deadlines[0].finished:
            deadlines.popleft()
        deadlines.append(inv)
        if self._timer is None:
            self._timer = loop.call_at(inv.deadline, self._expire)
        if self.inflight >= self.concurrency:
            self._waiting.append(inv)
            return
        self._start(inv)

    def _start(self, inv: _Invocation) -> None:
        self.inflight += 1
        inv.started = True
        if self._pool is not None:
            self._pool.submit(self._call_sync, inv, self._sync_done)
            return
        try:
            awaitable = self.handler.func(inv.event, inv.context)
        except Exception as exc:
            self._release(inv)
            inv.finish(Outcome(error=exc, stack=format_stack(exc)))
            return
        self._start_async(inv, awaitable)

    def _call_sync(self, inv: _Invocation) -> Outcome:
        try:
            return returned(self.handler.func(inv.event, inv.context))
        except BaseException as exc:  # every failure, even SystemExit, becomes a 502
            return Outcome(error=exc, stack=format_stack(exc))

    def _start_async(self, inv: _Invocation, awaitable: Any) -> None:
        loop = self._loop
        assert loop is not None
        coro = self._run_async(inv, awaitable)
        if EAGER_TASKS:
            task: asyncio.Task[None] = asyncio.Task(coro, loop=loop, eager_start=True)  # type: ignore[call-arg]
        else:
            task = asyncio.Task(coro, loop=loop)
        if not task.done():
            inv.task = task

    async def _run_async(self, inv: _Invocation, awaitable: Any) -> None:
        # The Task runs this wrapper, so the outcome is delivered as the handler returns,
        # not one loop turn later through a done callback.
        try:
            result = await awaitable
        except asyncio.CancelledError:
            self._release(inv)
            inv.finish(TIMED_OUT)  # no-op when the deadline already answered
            raise
        except Exception as exc:
            self._release(inv)
            inv.finish(Outcome(error=exc, stack=format_stack(exc)))
            return
        self._release(inv)
        inv.finish(returned(result))

    def _sync_done(self, inv: _Invocation, outcome: Outcome) -> None:
        result = outcome.result
        if type(result) is not dict and inspect.isawaitable(result):
            # A plain ``def`` that returns a coroutine: finish it on the loop.
            self._start_async(inv, result)
            return
        self._release(inv)
        inv.finish(outcome)

    def _expire(self) -> None:
        loop = self._loop
        assert loop is not None
        self._timer = None
        now = loop.time()
        deadlines = self._deadlines
        while deadlines:
            inv = deadlines[0]
            if inv.finished:
                deadlines.popleft()
                continue
            if inv.deadline > now:
                self._timer = loop.call_at(inv.deadline, self._expire)
                return
            deadlines.popleft()
            inv.finish(TIMED_OUT)
            if inv.started and not inv.released:
                inv.overdue = True
                self.stuck += 1
            if inv.task is not None and not inv.task.done():
                inv.task.cancel()

    def _release(self, inv: _Invocation) -> None:
        # The slot is held until the handler's code has really stopped: a sync handler past
        # its deadline still owns a pool thread, and the bound must count it.
        if inv.released:
            return
        inv.released = True
        self.inflight -= 1
        if inv.overdue:
            self.stuck -= 1
        while self._waiting and self.inflight < self.concurrency:
            nxt = self._waiting.popleft()
            if not nxt.finished:
                self._start(nxt)

    def shutdown(self) -> None:
        """Release the pool; exits the process at once if a handler is stuck past its deadline.

        Interpreter exit would wait for a stuck sync handler's thread, keeping a stopped
        container alive until the platform kills it.
        """
        if self._pool is not None:
            self._pool.shutdown()
        if self.inflight and not self.handler.is_async:
            sys.stdout.flush()
            log(f"hybridless shim: abandoning {self.inflight} stuck handler(s)")
            os._exit(0)


async def _await(awaitable: Any) -> Any:
    return await awaitable


def call_blocking(
    handler: Handler, event: Any, context: Any, loop: asyncio.AbstractEventLoop
) -> Any:
    """Call the handler in this thread and return its result; async handlers run on ``loop``."""
    result = handler.func(event, context)
    if inspect.isawaitable(result):
        return loop.run_until_complete(_await(result))
    return result
