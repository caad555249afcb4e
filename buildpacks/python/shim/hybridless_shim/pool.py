"""A bounded thread pool for sync handlers that hands work over in batches, not one job at a time.

``ThreadPoolExecutor`` wakes one thread per job and reports each result with its own write to
the loop's self-pipe. Under load on a small machine every one of those is a GIL hand-off and
a context switch, which costs more than a trivial handler. Here the loop queues a turn's jobs
and wakes a worker once, after the turn; one awake worker drains the queue while it keeps up;
results go back in one batch, with one self-pipe write while the loop has not drained the last.
Another worker is woken only when a call blocks (a slow or I/O-bound handler holds its thread),
so concurrency still grows to the bound where it helps.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

# A call running this long holds its worker: queued jobs get more workers.
# Longer than a few GIL switch intervals (5 ms), so that a worker merely waiting for the GIL
# while the loop parses the next batch does not count as stuck and wake thread after thread.
STALL_S = 0.02

_clock = time.monotonic

Job = tuple[Callable[[Any], Any], Any, Callable[[Any, Any], None]]


class _Worker:
    __slots__ = ("asleep", "in_call", "since", "wake")

    def __init__(self) -> None:
        self.wake = threading.Lock()
        self.wake.acquire()
        self.asleep = False
        # Whether a call runs now and since when (monotonic): the loop reads both without a
        # lock, and a stale value only hastens or delays one wake-up by a check interval.
        self.in_call = False
        self.since = 0.0


class WorkerPool:
    """Runs ``fn(arg)`` on at most ``size`` threads; ``callback(arg, result)`` runs on the loop."""

    def __init__(self, size: int, loop: asyncio.AbstractEventLoop, name: str = "handler") -> None:
        self.size = size
        self.loop = loop
        self.name = name
        # Guards the idle list and the awake count; the deques need no lock (the GIL makes
        # append and popleft atomic).
        self._lock = threading.Lock()
        self._jobs: deque[Job] = deque()
        self._workers: list[_Worker] = []
        self._idle: list[_Worker] = []
        self._awake = 0
        self._results: deque[tuple[Callable[[Any, Any], None], Any, Any]] = deque()
        self._flush_pending = False
        self._kick_pending = False
        self._stall_timer: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def threads(self) -> int:
        """Threads started so far (never more than ``size``)."""
        return len(self._workers)

    def submit(
        self, fn: Callable[[Any], Any], arg: Any, callback: Callable[[Any, Any], None]
    ) -> None:
        """Queue ``fn(arg)``; ``callback(arg, result)`` runs on the loop thread."""
        # Passing ``arg`` back spares the caller a closure per job.
        self._jobs.append((fn, arg, callback))
        # Wake a worker once the loop has read everything that arrived with this job, not
        # now: a worker woken per job runs it while the loop thread still parses the next
        # request, and the two trade the GIL, two context switches a request on one core.
        # One wake-up per loop turn hands the worker the turn's whole batch.
        if not self._kick_pending:
            self._kick_pending = True
            self.loop.call_soon(self._kick)

    def _kick(self) -> None:
        self._kick_pending = False
        if not self._jobs:
            return
        with self._lock:
            # A worker re-checks the queue under this lock before it sleeps, so either it
            # sees these jobs or it is counted idle here. An awake worker stuck in a long
            # call (a handler past its deadline) would leave them waiting for the stall check.
            if self._awake == 0 or self._all_blocked():
                self._wake_locked(1)
        if self._stall_timer is None:
            self._stall_timer = self.loop.call_later(STALL_S, self._check_stall)

    def _wake_locked(self, count: int) -> None:
        for _ in range(count):
            if self._idle:
                worker = self._idle.pop()
                worker.asleep = False
                self._awake += 1
                worker.wake.release()
            elif len(self._workers) < self.size:
                worker = _Worker()
                self._workers.append(worker)
                self._awake += 1
                thread = threading.Thread(
                    target=self._run,
                    args=(worker,),
                    name=f"{self.name}-{len(self._workers)}",
                    daemon=True,
                )
                thread.start()
            else:
                return

    def _all_blocked(self) -> bool:
        """True when some worker is awake and every awake one is STALL_S into a call."""
        cutoff = _clock() - STALL_S
        for worker in self._workers:
            if not worker.asleep and not (worker.in_call and worker.since < cutoff):
                return False
        return self._awake > 0

    def _check_stall(self) -> None:
        self._stall_timer = None
        if self._closed or not self._jobs:
            return  # the next kick arms the timer again
        with self._lock:
            if self._all_blocked():
                self._wake_locked(len(self._jobs))
        self._stall_timer = self.loop.call_later(STALL_S, self._check_stall)

    def _run(self, worker: _Worker) -> None:
        # Sync handlers that drive asyncio themselves (Mangum calls get_event_loop() and
        # run_until_complete()) expect what Lambda's main thread has: a loop, not running.
        asyncio.set_event_loop(asyncio.new_event_loop())
        jobs = self._jobs
        results = self._results
        while True:
            try:
                fn, arg, callback = jobs.popleft()
            except IndexError:
                with self._lock:
                    if jobs:
                        continue
                    if self._closed:
                        return
                    worker.asleep = True
                    self._awake -= 1
                    self._idle.append(worker)
                worker.wake.acquire()
                if self._closed:
                    return
                continue
            worker.since = _clock()
            worker.in_call = True
            result = fn(arg)
            worker.in_call = False
            results.append((callback, arg, result))
            # One wake-up of the loop per batch: the flag is cleared before the loop drains
            # the deque, so a result appended after the drain began always schedules another.
            if not self._flush_pending:
                self._flush_pending = True
                try:
                    self.loop.call_soon_threadsafe(self._flush)
                except RuntimeError:
                    return  # the loop is closed: the process is exiting

    def _flush(self) -> None:
        self._flush_pending = False
        results = self._results
        while results:
            callback, arg, result = results.popleft()
            callback(arg, result)

    def shutdown(self) -> None:
        """Stop idle threads; threads inside a call finish it and stop."""
        self._closed = True
        if self._stall_timer is not None:
            self._stall_timer.cancel()
        with self._lock:
            self._jobs.clear()
            for worker in self._idle:
                worker.wake.release()
            self._idle.clear()
