"""A background writer: metric batches and checkpoints are recorded off the training thread, with retries."""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections.abc import Callable

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from service import lifecycle
from service.lifecycle import NewCheckpoint
from service.models import utcnow
from service.records import Metric
from service.runtime import Runtime
from wgan.trainer import MetricPoint

log = logging.getLogger(__name__)
RETRY_FIRST_SECONDS = 0.2
RETRY_MAX_SECONDS = 5.0


def transient(exc: DBAPIError) -> bool:
    """Worth retrying: the database went away or refused the connection for a while, or the server
    ended this session (a restart, or the idle-in-transaction timeout after this process was frozen)."""
    return isinstance(exc, OperationalError | InterfaceError) or exc.connection_invalidated


class WritesFailed(RuntimeError):
    """The database stayed unreachable for longer than the retry budget."""


_CLOSE = object()


def with_retry(write: Callable[[], None], budget_seconds: float, what: str) -> None:
    """Run `write`, retrying transient database errors with exponential backoff, within a budget."""
    deadline = time.monotonic() + budget_seconds
    delay = RETRY_FIRST_SECONDS
    while True:
        try:
            write()
            return
        except DBAPIError as exc:
            if not transient(exc):
                raise
            if time.monotonic() + delay > deadline:
                raise WritesFailed(f"could not write {what} for {budget_seconds:.0f} s: {exc.orig or exc}") from exc
            log.warning("writing %s failed (%s); retrying in %.1f s", what, type(exc).__name__, delay)
            time.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)


class Recorder(threading.Thread):
    """Writes what the trainer reports, in order, one transaction per batch.

    Each batch is one lifecycle.record: its metric points, checkpoints, the job's progress and the
    matching events together, or none of them. Points at steps already recorded (before a restart)
    are skipped, so every step is stored once.
    """

    def __init__(
        self,
        rt: Runtime,
        job_id: str,
        worker_id: str,
        recorded_step: int,
        retry_seconds: float,
        on_failure: Callable[[BaseException], None],
        primary_measure: str = "exact_w1",
    ) -> None:
        super().__init__(name=f"recorder-{job_id[:8]}", daemon=True)
        self.rt = rt
        self.job_id = job_id
        self.primary_measure = primary_measure
        self.worker_id = worker_id
        self.recorded_step = recorded_step
        self.retry_seconds = retry_seconds
        self.on_failure = on_failure
        self.failure: BaseException | None = None
        self._queue: queue.Queue[object] = queue.Queue()

    def add_point(self, point: MetricPoint) -> None:
        self._queue.put(point)

    def add_checkpoint(self, record: NewCheckpoint) -> None:
        self._queue.put(record)

    def close(self) -> None:
        """Write everything queued, then stop. Raises what stopped the writer, if anything did."""
        self._queue.put(_CLOSE)
        self.join()
        if self.failure is not None:
            raise self.failure

    def run(self) -> None:
        closing = False
        while not closing:
            batch = [self._queue.get()]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            closing = any(item is _CLOSE for item in batch)
            items = [item for item in batch if item is not _CLOSE]
            if not items or self.failure is not None:
                continue
            try:
                with_retry(functools.partial(self._write, items), self.retry_seconds, f"{len(items)} records")
            except BaseException as exc:
                self.failure = exc
                self.on_failure(exc)

    def _write(self, items: list[object]) -> None:
        now = utcnow()
        metrics = [
            Metric.from_point(item, now)
            for item in items
            if isinstance(item, MetricPoint) and item.step > self.recorded_step
        ]
        checkpoints = [item for item in items if isinstance(item, NewCheckpoint)]
        lifecycle.record(self.rt, self.job_id, self.worker_id, metrics, checkpoints, self.primary_measure)
        if metrics:
            self.recorded_step = metrics[-1].step
