"""Broker sends made after a request has answered, on one thread, in the order they were handed over, and
whatever has piled up since the last send together in one.

A submission's task goes to the broker once its transaction has committed (service.lifecycle.Defer).
The API hands it here instead of sending it on the request's thread: the response does not wait for the
broker, and one thread sending in order means a job submitted before another reaches the queue first,
which background tasks run side by side did not promise. Under load, the submissions that committed
while a send was under way go out in the next one: one broker round trip and one wake of this thread for
all of them, not one each (bench request-cost). What a process could not send before it died is lost from
here only: the job is committed and queued, and the reaper re-sends its task.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from queue import Empty, SimpleQueue
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
STOP_SECONDS = 10
# The most items one send carries: bounds a round trip (and a MULTI/EXEC) however far the sends fell behind.
MAX_BATCH = 256

Item = TypeVar("Item")


class SerialSender(Generic[Item]):
    """Calls `send` with the items handed over, in hand-over order, on a thread of its own."""

    def __init__(self, send: Callable[[list[Item]], object], max_batch: int = MAX_BATCH) -> None:
        self._send = send
        self._max_batch = max_batch
        self._queue: SimpleQueue[Item | None] = SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def defer(self, item: Item) -> None:
        """Send `item` on the sender's thread after everything handed over before it."""
        with self._lock:
            if self._thread is None:  # started on first use: a process that never submits has no thread
                # Each thread its own queue: one still draining after close() never shares it with the next.
                self._queue = SimpleQueue()
                self._thread = threading.Thread(target=self._run, args=(self._queue,), name="broker-sends", daemon=True)
                self._thread.start()
            self._queue.put(item)

    def _run(self, queue: SimpleQueue[Item | None]) -> None:
        stopping = False
        while not stopping and (first := queue.get()) is not None:
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
                self._queue.put(None)
        if thread is not None:
            thread.join(STOP_SECONDS)
