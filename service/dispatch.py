"""Broker sends made after a request has answered, on one thread, in the order they were handed over, and
whatever has piled up since the last send together in one.

A submission's task goes to the broker once its transaction has committed (service.lifecycle.Defer).
The API hands it here instead of sending it on the request's thread: the response does not wait for the
broker, and one thread sending in order means a job submitted before another reaches the queue first,
which background tasks run side by side did not promise. Under load, the submissions that committed
while a send was under way go out in the next one: one broker round trip and one wake of this thread for
all of them, not one each (bench request-cost). A send that follows another closely first waits LINGER_SECONDS
for more to join it (see SerialSender). What a process could not send before it died is lost from
here only: the job is committed and queued, and the reaper re-sends its task.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from queue import Empty, SimpleQueue
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
STOP_SECONDS = 10
# The most items one send carries: bounds a round trip (and a MULTI/EXEC) however far the sends fell behind.
MAX_BATCH = 256
# How long a send that comes within this long of the last one waits for others to join it: a task reaches its
# queue at most this much later, against seconds at least for any job to train.
LINGER_SECONDS = 0.02

Item = TypeVar("Item")


class SerialSender(Generic[Item]):
    """Calls `send` with the items handed over, in hand-over order, on a thread of its own.

    A send that comes within `linger` seconds of the last one first waits that long for more to join it. A
    hand-over that finds the thread idle wakes it, and it then runs beside the request thread that answers
    next, the two taking the GIL from each other around every socket call: at one connection, 53 futex calls
    per POST, the anchor app's 10 (strace -f; bench request-cost). Under a steady stream of submissions,
    lingering makes that once per `linger`, not once per submission (25 futex calls per POST); a submission
    after a quiet spell goes at once.
    """

    def __init__(
        self, send: Callable[[list[Item]], object], max_batch: int = MAX_BATCH, linger: float = LINGER_SECONDS
    ) -> None:
        self._send = send
        self._max_batch = max_batch
        self._linger = linger
        self._queue: SimpleQueue[Item | None] = SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closing = threading.Event()

    def defer(self, item: Item) -> None:
        """Send `item` on the sender's thread after everything handed over before it."""
        with self._lock:
            if self._thread is None:  # started on first use: a process that never submits has no thread
                # Each thread its own queue: one still draining after close() never shares it with the next.
                self._queue = SimpleQueue()
                self._closing = threading.Event()
                self._thread = threading.Thread(
                    target=self._run, args=(self._queue, self._closing), name="broker-sends", daemon=True
                )
                self._thread.start()
            self._queue.put(item)

    def _run(self, queue: SimpleQueue[Item | None], closing: threading.Event) -> None:
        stopping = False
        last_send = -float("inf")
        while not stopping and (first := queue.get()) is not None:
            if time.monotonic() - last_send < self._linger:
                closing.wait(self._linger)  # cut short by close(): what waits goes at once
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    item = queue.get_nowait()
                except Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            last_send = time.monotonic()
            try:
                self._send(batch)
            except Exception:
                # The broker's sends report failure rather than raise; anything else is a bug to see, not a
                # reason to stop sending the rest.
                log.exception("a deferred broker send failed")

    def close(self) -> None:
        """Send what is waiting, then stop (at most STOP_SECONDS; the reaper covers the rest)."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is not None:
                self._closing.set()
                self._queue.put(None)
        if thread is not None:
            thread.join(STOP_SECONDS)
