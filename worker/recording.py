"""A background writer: metric batches and checkpoint rows go to the database off the training thread."""

from __future__ import annotations

import functools
import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from service import summary
from service.db import transaction
from service.models import Checkpoint, utcnow
from service.repositories import jobs as job_repo
from service.repositories import metrics as metric_repo
from service.repositories.events import append_event
from wgan.trainer import MetricPoint

log = logging.getLogger(__name__)
RETRY_FIRST_SECONDS = 0.2
RETRY_MAX_SECONDS = 5.0
ERROR_CHARS = 1000  # the checkpoints.evaluation_error column


def transient(exc: DBAPIError) -> bool:
    """Worth retrying: the database went away or refused the connection for a while, or the server
    ended this session (a restart, or the idle-in-transaction timeout after this process was frozen)."""
    return isinstance(exc, OperationalError | InterfaceError) or exc.connection_invalidated


class ClaimLost(RuntimeError):
    """Another worker has taken the job over: this one must stop writing and training."""


class WritesFailed(RuntimeError):
    """The database stayed unreachable for longer than the retry budget."""


@dataclass(frozen=True)
class CheckpointRecord:
    step: int
    artifact_key: str
    sha256: str
    size_bytes: int
    # The evaluation at this step (its measures, or why it failed) and the critic's estimate there.
    measures: dict[str, float] | None = None
    evaluation_error: str | None = None
    wasserstein_estimate: float | None = None


_CLOSE = object()


def metric_row(job_id: str, point: MetricPoint) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "step": point.step,
        "critic_loss": point.critic_loss,
        "generator_loss": point.generator_loss,
        "wasserstein_estimate": point.wasserstein_estimate,
        "gradient_penalty": point.gradient_penalty,
        "seconds_per_step": point.seconds_per_step,
        "measures": _finite_measures(point.evaluation),
        "time": utcnow(),
    }


def _finite_measures(measures: dict[str, float] | None) -> dict[str, float] | None:
    # JSON has no NaN: a measure that came out undefined is left out rather than stored as garbage.
    kept = {name: value for name, value in (measures or {}).items() if math.isfinite(value)}
    return kept or None


def iso(moment: datetime) -> str:
    """RFC 3339 UTC with a Z, as the API's responses write times."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def event_point(row: dict[str, Any]) -> dict[str, Any]:
    """A metric point as the event stream and the REST API show it (the headline measures also at the top)."""
    point = {k: v for k, v in row.items() if k != "job_id"}
    measures = row.get("measures") or {}
    point["exact_w1"] = measures.get("exact_w1")
    point["modes_covered"] = measures.get("modes_covered")
    point["time"] = iso(row["time"])
    return point


def checkpoint_event(row: Checkpoint) -> dict[str, Any]:
    return {
        "id": row.id,
        "step": row.step,
        "created_at": iso(row.created_at),
        "size_bytes": row.size_bytes,
        "measures": row.measures,
        "evaluation_error": row.evaluation_error,
    }


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

    Each batch stores its metric rows, the job's progress and the matching events together, or
    none of them. Points at steps already recorded (before a restart) are skipped, so every step
    is stored once.
    """

    def __init__(
        self,
        job_id: str,
        worker_id: str,
        recorded_step: int,
        retry_seconds: float,
        on_failure: Callable[[BaseException], None],
        primary_measure: str = "exact_w1",
    ) -> None:
        super().__init__(name=f"recorder-{job_id[:8]}", daemon=True)
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

    def add_checkpoint(self, record: CheckpointRecord) -> None:
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
        points = [item for item in items if isinstance(item, MetricPoint) and item.step > self.recorded_step]
        checkpoints = [item for item in items if isinstance(item, CheckpointRecord)]
        with transaction() as session:
            job = job_repo.holds_claim(session, self.job_id, self.worker_id)
            if job is None:
                raise ClaimLost(f"job {self.job_id} is no longer claimed by {self.worker_id}")
            rows = [metric_row(self.job_id, point) for point in points]
            metric_repo.insert_ignoring_duplicates(session, rows)
            if rows:
                append_event(session, self.job_id, "metrics", [event_point(row) for row in rows])
                last = rows[-1]
                job.progress_step = last["step"]
                job.latest_metrics = {k: v for k, v in event_point(last).items() if _finite(v)}
            for record in checkpoints:
                # A step can be checkpointed again after a resume from an earlier, intact checkpoint
                # (the later one was damaged): the new file replaces the old index entry.
                session.execute(
                    delete(Checkpoint).where(Checkpoint.job_id == self.job_id, Checkpoint.step == record.step)
                )
                row = Checkpoint(
                    job_id=self.job_id,
                    step=record.step,
                    artifact_key=record.artifact_key,
                    sha256=record.sha256,
                    size_bytes=record.size_bytes,
                    measures=_finite_measures(record.measures),
                    evaluation_error=None if record.evaluation_error is None else record.evaluation_error[:ERROR_CHARS],
                )
                session.add(row)
                session.flush()
                job.summary = summary.add_checkpoint(
                    job.summary,
                    self.primary_measure,
                    step=row.step,
                    checkpoint_id=row.id,
                    estimate=record.wasserstein_estimate,
                    measures=row.measures,
                )
                append_event(session, self.job_id, "checkpoint", checkpoint_event(row))
            job.heartbeat_at = utcnow()
        if points:
            self.recorded_step = max(point.step for point in points)


def _finite(value: Any) -> bool:
    return not isinstance(value, float) or math.isfinite(value)
