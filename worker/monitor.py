"""Why a trainer should stop, and the heartbeat thread that keeps its claim and hears cancels."""

from __future__ import annotations

import logging
import threading

from sqlalchemy.exc import SQLAlchemyError

from service import lifecycle
from service.runtime import Runtime
from service.states import StopReason

log = logging.getLogger(__name__)

# Set once the worker process is asked to shut down (SIGTERM): every trainer in it stops,
# checkpoints and hands its job back to the queue.
SHUTDOWN = threading.Event()


class StopSignal:
    """The first reason to stop wins; the trainer polls `is_set` each step (no I/O)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: StopReason | None = None
        self._lock = threading.Lock()

    def stop(self, reason: StopReason) -> None:
        with self._lock:
            if self.reason is None:
                self.reason = reason
                self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set() or SHUTDOWN.is_set()

    @property
    def why(self) -> StopReason | None:
        return self.reason or (StopReason.SHUTDOWN if SHUTDOWN.is_set() else None)


class Heartbeat(threading.Thread):
    """Refreshes the claim every interval; learns of cancels and of a claim taken over."""

    def __init__(self, rt: Runtime, job_id: str, worker_id: str, interval: float, signal: StopSignal) -> None:
        super().__init__(name=f"heartbeat-{job_id[:8]}", daemon=True)
        self.rt = rt
        self.job_id = job_id
        self.worker_id = worker_id
        self.interval = interval
        self.signal = signal
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.interval):
            if SHUTDOWN.is_set():
                self.signal.stop(StopReason.SHUTDOWN)
            try:
                held, cancel = lifecycle.heartbeat(self.rt, self.job_id, self.worker_id)
            except SQLAlchemyError as exc:
                # Keep training: the recorder retries writes, and a claim lost meanwhile is noticed
                # on the next heartbeat that gets through.
                log.warning("heartbeat failed: %s", type(exc).__name__, extra={"job_id": self.job_id})
                continue
            if not held:
                self.signal.stop(StopReason.LOST_CLAIM)
            elif cancel:
                self.signal.stop(StopReason.CANCEL)

    def finish(self) -> None:
        self._done.set()
        self.join()
