"""A bounded thread pool for sync handlers that wakes as few threads as keep the queue moving.

``ThreadPoolExecutor`` wakes one thread per job and reports each result with its own write to
the loop's self-pipe. Under load on a small machine every one of those is a GIL hand-off and
a context switch, which costs more than a trivial handler. Here a worker is woken at most once
per loop turn, with the turn's whole batch, and one awake worker drains the queue while it
keeps up; another is woken only when the queue stops moving (a slow handler
holds its thread), so concurrency still grows to the bound for I/O-bound handlers. Results
reach the loop in batches, one wake-up per batch.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

# A job that waits this long while every awake worker is inside a call gets a new worker.
STALL_S = 0.002

Job = tuple[Callable[[Any], Any], Any, Callable[[Any, Any], None]]


class _Worker:
    __slots__ = ("busy_since", "idle", "wake")

    def __init__(self) -> None:
        self.wake = threading.Lock()
        self.wake.acquire()
        self.idle = False
        # monotonic() when the current call began; 0.0 between calls.
        self.busy_since = 0.0


class WorkerPool:
    """Runs ``fn(arg)`` on at most ``size`` threads; ``callback(arg, result)`` runs on the loop."""

    def __init__(self, size: int, loop: asyncio.AbstractEventLoop, name: str = "handler") -> None:
        self.size = size
        self.loop = loop
        self.name = name
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
        with self._lock:
            self._jobs.append((fn, arg, callback))
        # Wake a worker once the loop has read everything that arrived with this job, not
        # now: a worker woken per job runs it while the loop thread still parses the next
        # request, and the two trade the GIL, two context switches a request on one core.
        # One wake-up per loop turn hands the worker the turn's whole batch.
        if not self._kick_pending:
            self._kick_pending = True
            self.loop.call_soon(self._kick)
        if self._stall_timer is None:
            self._stall_timer = self.loop.call_later(STALL_S, self._check_stall)

    def _kick(self) -> None:
        self._kick_pending = False
        with self._lock:
            if self._jobs and (self._awake == 0 or self._all_stuck(time.monotonic())):
                self._wake_locked(1)

    def _all_stuck(self, now: float) -> bool:
        # Workers between calls will take the job soon; only calls running for a while block it.
        cutoff = now - STALL_S
        for worker in self._workers:
            if not worker.idle and not (0.0 < worker.busy_since < cutoff):
                return False
        return True

    def _wake_locked(self, count: int) -> None:
        for _ in range(count):
            if self._idle:
                worker = self._idle.pop()
                worker.idle = False
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

    def _check_stall(self) -> None:
        self._stall_timer = None
        with self._lock:
            if not self._jobs:
                return
            if self._all_stuck(time.monotonic()):
                self._wake_locked(len(self._jobs))
        self._stall_timer = self.loop.call_later(STALL_S, self._check_stall)

    def _run(self, worker: _Worker) -> None:
        # Sync handlers that drive asyncio themselves (Mangum calls get_event_loop() and
        # run_until_complete()) expect what Lambda's main thread has: a loop, not running.
        asyncio.set_event_loop(asyncio.new_event_loop())
        lock = self._lock
        jobs = self._jobs
        while not self._closed:
            with lock:
                if jobs:
                    fn, arg, callback = jobs.popleft()
                    worker.busy_since = time.monotonic()
                else:
                    fn = None
                    worker.busy_since = 0.0
                    worker.idle = True
                    self._awake -= 1
                    self._idle.append(worker)
            if fn is None:
                worker.wake.acquire()
                if self._closed:
                    return
                continue
            result = fn(arg)
            self._results.append((callback, arg, result))
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
