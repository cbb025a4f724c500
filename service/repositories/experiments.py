"""Queries on experiments: owner-scoped reads, pagination, their runs and their event log."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from service.models import Experiment, ExperimentEvent, Job, is_id
from service.principal import Principal
from service.records import EventType
from service.repositories.events import StoredEvent, stored_after
from service.repositories.jobs import decode_cursor, encode_cursor
from service.states import JobState


def get(session: Session, experiment_id: str, principal: Principal, *, for_update: bool = False) -> Experiment | None:
    """The experiment if the principal may see it; another owner's is None, like a missing one."""
    if not is_id(experiment_id):
        return None
    query = select(Experiment).where(Experiment.id == experiment_id)
    if not principal.is_admin:
        query = query.where(Experiment.owner_id == principal.owner_id)
    if for_update:
        query = query.with_for_update()
    return session.scalars(query).one_or_none()


def page(
    session: Session, principal: Principal, *, limit: int, cursor: str | None
) -> tuple[Sequence[Experiment], str | None]:
    """Newest first; the cursor names the last experiment of the previous page (as the job list's does)."""
    query = select(Experiment)
    if not principal.is_admin:
        query = query.where(Experiment.owner_id == principal.owner_id)
    if cursor is not None:
        created, last_id = decode_cursor(cursor)
        query = query.where(
            or_(Experiment.created_at < created, and_(Experiment.created_at == created, Experiment.id < last_id))
        )
    rows = session.scalars(query.order_by(Experiment.created_at.desc(), Experiment.id.desc()).limit(limit + 1)).all()
    if len(rows) > limit:
        return rows[:limit], encode_cursor(rows[limit - 1])
    return rows, None


def runs(session: Session, experiment_id: str) -> Sequence[Job]:
    """Its runs in the order they were made (the grid's order)."""
    query = select(Job).where(Job.experiment_id == experiment_id).order_by(Job.created_at, Job.event_seq, Job.name)
    return session.scalars(query).all()


def lock_runs(session: Session, experiment_id: str) -> Sequence[Job]:
    """Its runs, read again and locked until the transaction ends, in id order: the order in which every
    other locker of several jobs takes them."""
    query = (
        select(Job)
        .where(Job.experiment_id == experiment_id)
        .order_by(Job.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return session.scalars(query).all()


def runs_of(session: Session, experiment_ids: Sequence[str]) -> dict[str, list[Job]]:
    found: dict[str, list[Job]] = {experiment_id: [] for experiment_id in experiment_ids}
    if experiment_ids:
        query = select(Job).where(Job.experiment_id.in_(experiment_ids)).order_by(Job.created_at, Job.name)
        for job in session.scalars(query):
            found[job.experiment_id or ""].append(job)
    return found


def unfinished_runs(session: Session, experiment_id: str) -> int:
    final = [state for state in JobState if state.final]
    query = select(func.count()).where(Job.experiment_id == experiment_id, Job.status.not_in(final))
    return session.scalar(query) or 0


def append_event(session: Session, experiment_id: str, kind: EventType, data: Any) -> ExperimentEvent:
    """Add an event numbered one past the experiment's last; the UPDATE … RETURNING holds the experiment's
    row until commit, so runs recorded by different workers number their events in commit order."""
    seq = session.execute(
        update(Experiment)
        .where(Experiment.id == experiment_id)
        .values(event_seq=Experiment.event_seq + 1)
        .returning(Experiment.event_seq)
    ).scalar_one()
    event = ExperimentEvent(experiment_id=experiment_id, seq=seq, type=kind.value, data=data)
    session.add(event)
    return event


def events_after(session: Session, experiment_id: str, seq: int, limit: int) -> list[StoredEvent]:
    return stored_after(session, ExperimentEvent, ExperimentEvent.experiment_id == experiment_id, seq, limit)


def delete_rows(session: Session, experiment: Experiment) -> None:
    session.execute(delete(ExperimentEvent).where(ExperimentEvent.experiment_id == experiment.id))
    session.delete(experiment)
