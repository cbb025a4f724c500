"""At most so many generator passes at once in this API process, each on a thread of the gate's own; the
rest wait in line.

Sampling runs each forward pass on one torch thread (WGAN_API_TORCH_THREADS). Sixteen passes at once on
two cores do not finish sooner than two at a time: they share the cores, each one's latency grows with
the crowd, and their caches and memory thrash. Passes beyond the cores wait here, in arrival order,
until a core frees up, their client goes or their deadline passes: a sample request awaits its place on
the event loop (app.sample_batches, which `submit` serves), woken by whichever comes first;
a thread calling `run` (an export) asks its `should_stop` now and then.

The passes run on the gate's threads, not on the request threads that ask for them: each glibc thread
keeps its own malloc arena, and a pass on whichever of forty request threads came along found its
arena cold, took ~120 page faults per request instead of ~10, and cost 10–15 % more CPU than the same
pass on a thread that runs nothing else (bench sampling, 2 cores). A slot is a thread, so the few
threads that do the work keep their memory warm, as a bare loop does.

For the same reason each of the gate's threads may be pinned to a core of its own (`pin`, the process's
cores in turn): left to the scheduler, a pass moved between cores as the request threads, the event loop,
Postgres and Redis woke around it, and came back to cold caches, and a core sat idle while both passes
waited on the other. Pinned, the API served 89.5 % of the bare rate at 16 clients where it served 87.9 %
unpinned, at 30.7 against 31.2 ms of CPU per request, the host idle 2.0 % of the time against 2.5 %
(bench sampling's windows, two APIs side by side, eight windows each, 2 cores).
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from typing import TypeVar

from wgan.sampling import SamplingStopped

log = logging.getLogger(__name__)

POLL_SECONDS = 0.05
T = TypeVar("T")


def _pinning(pin: bool, slots: int) -> Callable[[], None] | None:
    """What each new thread of the gate runs first: with `pin`, it binds itself to the next of the process's
    cores, in turn (a thread's own affinity: the rest of the process is left as it is). A gate with more
    threads than cores asked for them to share the cores: those are left to the scheduler, which balances
    them by load where pinning could only balance them by count."""
    if not pin or not hasattr(os, "sched_setaffinity"):  # not on Linux
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if slots > len(allowed):
        return None
    turn = itertools.count()

    def bind() -> None:
        core = allowed[next(turn) % len(allowed)]
        try:
            os.sched_setaffinity(0, {core})  # 0: the calling thread
        except OSError as exc:
            # The process's cores changed since (a cpuset narrowed): an unpinned thread still serves, where a
            # failed initializer would break the gate for good.
            log.warning("could not pin a sampling thread to core %d (%s); it runs unpinned", core, exc)

    return bind


def cores() -> int:
    """The cores this process may run on (its affinity, which a container's CPU set narrows)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class ComputeGate:
    def __init__(self, slots: int, pin: bool = False) -> None:
        self.slots = slots
        # The executor's queue is first in, first out: those who came first are served first.
        self._threads = ThreadPoolExecutor(slots, thread_name_prefix="generator", initializer=_pinning(pin, slots))
        self._waiting = 0
        self._lock = threading.Lock()

    def run(self, work: Callable[[], T], should_stop: Callable[[], bool] | None = None) -> T:
        """`work`'s result, computed on one of the gate's threads once one is free, after those who came
        first; its exception, raised here. SamplingStopped if `should_stop` says so while still in line
        (work already started runs to its end: it asks `should_stop` itself between chunks)."""
        future = self.submit(work)
        while True:
            try:
                return future.result(POLL_SECONDS)
            except TimeoutError:  # concurrent.futures' is the builtin since 3.11
                self._leave_if(should_stop, future)
            except CancelledError:  # the gate closed while it was in line
                raise self._closed() from None

    def _leave_if(self, should_stop: Callable[[], bool] | None, future: Future[T]) -> None:
        """SamplingStopped if `should_stop` says so and the work can still leave the line (not started)."""
        if should_stop is not None and should_stop():
            self._leave(future)

    def _leave(self, future: Future[T]) -> None:
        """SamplingStopped if the work can still leave the line (it has not started); else nothing."""
        if future.cancel():
            raise SamplingStopped("waited in line for a free core")

    def submit(self, work: Callable[[], T]) -> Future[T]:
        """`work` put in line, not awaited: its future, whose `cancel()` takes it out of the line until it
        starts (the line's count follows). SamplingStopped if the gate has closed."""

        def start() -> T:
            self._left()
            return work()

        def cancelled(future: Future[T]) -> None:
            # Out of the line without starting (a future that has started cannot be cancelled): taken out
            # (cancel) or dropped by the gate's closing.
            if future.cancelled():
                self._left()

        with self._lock:
            self._waiting += 1
        try:
            future = self._threads.submit(start)
        except RuntimeError:  # closed: the executor takes nothing more
            self._left()
            raise self._closed() from None
        future.add_done_callback(cancelled)
        return future

    @staticmethod
    def _closed() -> SamplingStopped:
        """What a waiter is told when the gate's closing has emptied the line."""
        return SamplingStopped("the API is shutting down")

    def _left(self) -> None:
        with self._lock:
            self._waiting -= 1

    @property
    def waiting(self) -> int:
        """Passes in line, not yet on a thread."""
        with self._lock:
            return self._waiting

    def close(self) -> None:
        """Drop those still in line; a pass under way finishes."""
        self._threads.shutdown(wait=False, cancel_futures=True)
