"""At most so many generator passes at once in this API process; the rest wait in line.

Sampling runs each forward pass on one torch thread (WGAN_API_TORCH_THREADS). Sixteen passes at once on
two cores do not finish sooner than two at a time: they share the cores, each one's latency grows with
the crowd, and their caches and memory thrash. Passes beyond the cores wait here, in arrival order,
and each waiter keeps asking whether its client has gone or its deadline passed.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from wgan.sampling import SamplingStopped

POLL_SECONDS = 0.05


def cores() -> int:
    """The cores this process may run on (its affinity, which a container's CPU set narrows)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class ComputeGate:
    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._free = slots
        self._line: deque[threading.Event] = deque()
        self._lock = threading.Lock()

    @contextmanager
    def held(self, should_stop: Callable[[], bool] | None = None) -> Iterator[None]:
        """A slot for the work inside, after those who came first. SamplingStopped if `should_stop` says
        so while waiting."""
        turn = threading.Event()
        with self._lock:
            if self._free > 0 and not self._line:
                self._free -= 1
                turn.set()
            else:
                self._line.append(turn)
        while not turn.wait(POLL_SECONDS):
            if should_stop is not None and should_stop():
                with self._lock:
                    if not turn.is_set():
                        self._line.remove(turn)
                        raise SamplingStopped("waited in line for a free core")
                break  # handed the slot just as it gave up: use it
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        with self._lock:
            if self._line:
                self._line.popleft().set()  # the slot passes straight to the next in line
            else:
                self._free += 1

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._line)
