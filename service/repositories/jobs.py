"""Queries on jobs: owner-scoped reads, pagination, and the statements of the claim protocol.

They change no state on their own: service.lifecycle decides and records each transition."""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, ScalarSelect, Select, and_, bindparam, delete, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from service import driver_sql
from service.db import Executor, connection_of
from service.models import (
    ApiKey,
    CheckpointRow,
    Event,
    Experiment,
    IdempotencyRecord,
    Job,
    MetricRow,
    WebhookDelivery,
    is_id,
    utcnow,
)
from service.principal import Principal
from service.repositories.keys import PRINCIPAL_COLUMNS, active_with_hash, principal_of
from service.states import JobState, JobStatus

SelectT = TypeVar("SelectT", bound="Select[*tuple[Any, ...]]")


def scoped(query: SelectT, principal: Principal) -> SelectT:
    """Only the principal's jobs, unless it is an admin."""
    return query if principal.is_admin else query.where(Job.owner_id == principal.owner_id)


@functools.cache
def _by_id(of_owner: bool, for_update: bool) -> Select[Job]:
    # Built once: a statement object used again keeps its memoized cache key and its compiled form's
    # result columns, which building it per call recomputed (about a tenth of a GET's CPU, py-spy).
    query = _where_id(select(Job), of_owner)
    return query.with_for_update() if for_update else query


def _where_id(query: SelectT, of_owner: bool) -> SelectT:
    """The job `:job_id`, and only if `:owner_id` owns it when `of_owner` (bound, so the statement caches)."""
    query = query.where(Job.id == bindparam("job_id"))
    return query.where(Job.owner_id == bindparam("owner_id")) if of_owner else query


def get(session: Session, job_id: str, principal: Principal, *, for_update: bool = False) -> Job | None:
    """The job if it exists and the principal may see it; another owner's job is None, like a missing one."""
    if not is_id(job_id):
        return None
    query = _by_id(not principal.is_admin, for_update)
    return session.scalars(query, {"job_id": job_id, "owner_id": principal.owner_id}).one_or_none()


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job as a read shows it (service.views.job_view): its columns, without an ORM object, for the
    reads a client makes most. Loading a Job through the ORM (identity map, instance state, attribute
    instrumentation) cost about a tenth of a GET's server CPU (bench request-cost)."""

    id: str
    name: str
    status: JobState
    spec: dict[str, Any]
    progress_step: int
    total_steps: int
    latest_metrics: dict[str, Any] | None
    error: dict[str, Any] | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cancel_requested: bool
    attempts: int
    summary: dict[str, Any] | None
    experiment_id: str | None


@functools.cache
def _record_by_id(of_owner: bool) -> Select[Any]:
    return _where_id(select(*(getattr(Job, field.name) for field in fields(JobRecord))), of_owner)


def read(session: Executor, job_id: str, principal: Principal) -> JobRecord | None:
    """The job as `get` finds it, as a JobRecord: for a read that changes nothing."""
    if not is_id(job_id):
        return None
    query = _record_by_id(not principal.is_admin)
    row = driver_sql.first(connection_of(session), query, {"job_id": job_id, "owner_id": principal.owner_id})
    return None if row is None else JobRecord(*row)


def with_key(*columns: Any) -> Select[Any]:
    """The caller's columns, then `columns`, in one statement: a row only when the key `:key_hash` is
    active and its owner may see the job `:job_id` (its own, or any for an admin's key); `_where_id`'s
    scoping, with the key read in the same statement."""
    sees_job = and_(Job.id == bindparam("job_id"), or_(ApiKey.is_admin.is_(True), Job.owner_id == ApiKey.owner_id))
    return select(*PRINCIPAL_COLUMNS, *columns).join_from(ApiKey, Job, sees_job).where(active_with_hash())


@functools.cache
def _record_with_key() -> Select[Any]:
    return with_key(*(getattr(Job, field.name) for field in fields(JobRecord)))


def read_with_key(session: Executor, key_hash: str, job_id: str) -> tuple[Principal, JobRecord] | None:
    """The caller behind the key with this hash and the job as `read` finds it for them, in one round trip;
    None when either is missing (a bad or revoked key, a job it may not see), which `read` after the key's
    own check tells apart."""
    if not is_id(job_id):
        return None
    found = driver_sql.first(connection_of(session), _record_with_key(), {"key_hash": key_hash, "job_id": job_id})
    if found is None:
        return None
    principal, job = principal_of(found)
    return principal, JobRecord(*job)


def get_any(session: Session, job_id: str) -> Job | None:
    return session.get(Job, job_id)


def encode_cursor(row: Job | Experiment | WebhookDelivery) -> str:
    raw = f"{row.created_at.isoformat()}|{row.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Raises ValueError on a cursor this service did not make."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, job_id = raw.split("|", 1)
        moment = datetime.fromisoformat(created)
        if not is_id(job_id) or moment.tzinfo is None:
            raise ValueError(job_id)
        return moment, job_id
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValueError("not a cursor from this service") from exc


def page(
    session: Session, principal: Principal, *, status: JobStatus | None, limit: int, cursor: str | None
) -> tuple[Sequence[Job], str | None]:
    """Newest first; the cursor names the last job of the previous page."""
    query = scoped(select(Job), principal)
    if status is not None:
        query = query.where(Job.status.in_(JobState.showing(status)))
    if cursor is not None:
        created, job_id = decode_cursor(cursor)
        query = query.where(or_(Job.created_at < created, and_(Job.created_at == created, Job.id < job_id)))
    jobs = session.scalars(query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1)).all()
    if len(jobs) > limit:
        return jobs[:limit], encode_cursor(jobs[limit - 1])
    return jobs, None


def count_by_state(session: Session) -> dict[JobState, int]:
    rows = session.execute(select(Job.status, func.count()).group_by(Job.status)).all()
    return {state: count for state, count in rows}


def delete_rows(session: Session, job: Job) -> None:
    # Explicit deletes, children first, so the outcome does not hang on the database's cascade support.
    for table in (MetricRow, Event, CheckpointRow, IdempotencyRecord):
        session.execute(delete(table).where(table.job_id == job.id))
    session.delete(job)


# --- the claim protocol ----------------------------------------------------------------------


def running_for_owner(owner_id: str) -> Select[Any]:
    other = aliased(Job)
    return select(func.count()).select_from(other).where(other.owner_id == owner_id, other.status == JobState.RUNNING)


def owner_of(session: Session, job_id: str) -> str | None:
    return session.scalar(select(Job.owner_id).where(Job.id == job_id))


def _queued_ahead() -> ScalarSelect[int]:
    """The owner's queued jobs submitted before the job in the enclosing statement, on its queue: they
    start first, so its owner's room is what they leave."""
    older = aliased(Job)
    return (
        select(func.count())
        .select_from(older)
        .where(
            older.owner_id == Job.owner_id,
            older.status == JobState.QUEUED,
            older.queue == Job.queue,
            older.created_at < Job.created_at,
            older.cancel_requested.is_(False),
        )
        .scalar_subquery()
    )


def _stale(stale_before: datetime) -> ColumnElement[bool]:
    return and_(Job.status == JobState.RUNNING, or_(Job.heartbeat_at.is_(None), Job.heartbeat_at < stale_before))


def take_claim(
    session: Session, job_id: str, owner_id: str, worker_id: str, stale_before: datetime, max_running_per_owner: int
) -> bool:
    """Claim the job for `worker_id` if it is queued while its owner has room for it after their older
    queued jobs on its queue, or running under a claim gone stale. One conditional UPDATE: two workers
    racing for one job cannot both win.

    Room after the older ones: an owner's jobs start in the order they were submitted, whichever worker
    happens to take which task first. Its caller holds the owner's lock, so the count is not raced."""
    now = utcnow()
    stale = _stale(stale_before)
    startable = and_(
        Job.status == JobState.QUEUED,
        running_for_owner(owner_id).scalar_subquery() + _queued_ahead() < max_running_per_owner,
    )
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, or_(startable, stale), Job.cancel_requested.is_(False))
        .values(
            status=JobState.RUNNING,
            claimed_by=worker_id,
            heartbeat_at=now,
            attempts=Job.attempts + 1,
            started_at=func.coalesce(Job.started_at, now),
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def dispatchable(session: Session, max_running_per_owner: int) -> list[Job]:
    """Jobs waiting for capacity that a worker would now start, oldest first: their owner has room after
    its running jobs, its queued jobs ahead of them (take_claim's rule, so a job sent is not refused
    again on every reaper pass) and those chosen before them here."""
    waiting = session.execute(
        select(Job, _queued_ahead()).where(Job.status == JobState.WAITING).order_by(Job.created_at)
    ).all()
    running: dict[str, int] = {}
    chosen: list[Job] = []
    for job, ahead in waiting:
        if job.owner_id not in running:
            running[job.owner_id] = session.scalar(running_for_owner(job.owner_id)) or 0
        if running[job.owner_id] + ahead < max_running_per_owner:
            running[job.owner_id] += 1  # it will run: the next of this owner's has that much less room
            chosen.append(job)
    return chosen


def dispatch(session: Session, job_id: str, now: datetime) -> bool:
    """WAITING → QUEUED, if the job still waits: whether it did. One conditional UPDATE: a job cancelled or
    dispatched by another reaper since it was read stays as it is."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobState.WAITING)
        .values(status=JobState.QUEUED, enqueued_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def holds_claim(session: Session, job_id: str, worker_id: str, *, lock: bool = True) -> Job | None:
    """The job, locked, if `worker_id` still holds its claim; None if the claim was lost."""
    query = select(Job).where(Job.id == job_id, Job.claimed_by == worker_id, Job.status == JobState.RUNNING)
    if lock:
        query = query.with_for_update()
    return session.scalars(query).one_or_none()


def heartbeat(session: Session, job_id: str, worker_id: str) -> tuple[bool, bool]:
    """Refresh the claim's heartbeat. Returns (still held, cancel requested)."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.claimed_by == worker_id, Job.status == JobState.RUNNING)
        .values(heartbeat_at=utcnow())
        .returning(Job.cancel_requested)
    ).one_or_none()
    if result is None:
        return False, False
    return True, bool(result[0])


def stale_running(session: Session, stale_before: datetime) -> Sequence[Job]:
    return session.scalars(select(Job).where(_stale(stale_before))).all()


def lock_still_stale(session: Session, job_ids: Collection[str], stale_before: datetime) -> Sequence[Job]:
    """Those of these jobs still running under a stale claim, read again and locked until the transaction
    ends; another reaper that took one back first, or its worker beating again, leaves it out. Each is
    locked by a write that changes nothing, in id order (two callers lock them in the same order): Postgres
    locks its row, and once a transaction that held it ends, checks the condition again on what it wrote;
    SQLite, where FOR UPDATE locks nothing, takes its one write lock the same way."""
    locked = []
    for job_id in sorted(job_ids):
        touched = session.execute(
            update(Job)
            .where(Job.id == job_id, _stale(stale_before))
            .values(status=Job.status)
            .execution_options(synchronize_session=False)
        )
        if touched.rowcount == 1:  # type: ignore[attr-defined]
            locked.append(job_id)
    if not locked:
        return []
    query = select(Job).where(Job.id.in_(locked)).order_by(Job.id).execution_options(populate_existing=True)
    return session.scalars(query).all()


def waiting_too_long(session: Session, enqueued_before: datetime) -> Sequence[Job]:
    """Queued jobs whose task was sent long ago."""
    query = select(Job).where(Job.status == JobState.QUEUED, Job.enqueued_at < enqueued_before)
    return session.scalars(query).all()


def running(session: Session) -> Sequence[Job]:
    return session.scalars(select(Job).where(Job.status == JobState.RUNNING)).all()


def recent_speeds(session: Session, queue: str, limit: int) -> list[tuple[dict[str, Any], float]]:
    """(spec, seconds per step) of the newest jobs on `queue` that have trained, across owners.

    Speed is a property of the deployment's workers, not of an owner; only the numbers leave here.
    """
    rows = session.execute(
        select(Job.spec, Job.latest_metrics)
        .where(Job.queue == queue, Job.latest_metrics.is_not(None), Job.progress_step > 0)
        .order_by(Job.created_at.desc())
        .limit(limit)
    ).all()
    speeds = []
    for spec, latest in rows:
        seconds = (latest or {}).get("seconds_per_step")
        if isinstance(seconds, int | float) and seconds > 0:
            speeds.append((spec, float(seconds)))
    return speeds
