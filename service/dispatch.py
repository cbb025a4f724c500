"""Broker sends made after a request has answered, one at a time, in the order they were handed over.

A submission's task goes to the broker once its transaction has committed (service.lifecycle.Defer).
The API hands it here instead of sending it on the request's thread: the response does not wait for the
broker, and one thread sending in order means a job submitted before another reaches the queue first,
which background tasks run side by side did not promise. What a process could not send before it died
is lost from here only: the job is committed and queued, and the reaper re-sends its task.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from queue import SimpleQueue

log = logging.getLogger(__name__)
STOP_SECONDS = 10


class SerialSender:
    def __init__(self) -> None:
        self._queue: SimpleQueue[Callable[[], object] | None] = SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def defer(self, send: Callable[[], object]) -> None:
        """Run `send` on the sender's thread after everything handed over before it."""
        with self._lock:
            if self._thread is None:  # started on first use: a process that never submits has no thread
                # Each thread its own queue: one still draining after close() never shares it with the next.
                self._queue = SimpleQueue()
                self._thread = threading.Thread(target=self._run, args=(self._queue,), name="broker-sends", daemon=True)
                self._thread.start()
            self._queue.put(send)

    @staticmethod
    def _run(queue: SimpleQueue[Callable[[], object] | None]) -> None:
        while (send := queue.get()) is not None:
            try:
                send()
            except Exception:
                # TaskQueue's sends return False rather than raise; anything else is a bug to see, not a
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
