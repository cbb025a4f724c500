"""The per-job event log: numbered in commit order, replayed by the SSE stream."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.models import Event, Job

PENDING_EVENTS = "pending_events"


def append_event(session: Session, job_id: str, kind: str, data: Any) -> Event:
    """Add an event numbered one past the job's last.

    The UPDATE … RETURNING takes the job row's write lock until commit, so concurrent writers
    (a worker and a cancelling request) number their events in the order they commit.
    """
    seq = session.execute(
        update(Job).where(Job.id == job_id).values(event_seq=Job.event_seq + 1).returning(Job.event_seq)
    ).scalar_one()
    return record(session, job_id, seq, kind, data)


def record(session: Session, job_id: str, seq: int, kind: str, data: Any) -> Event:
    """Add event number `seq`, to be announced once the session commits."""
    event = Event(job_id=job_id, seq=seq, type=kind, data=data)
    session.add(event)
    # Announced on commit (service.db), never before: a stream must not see what may roll back.
    session.info.setdefault(PENDING_EVENTS, []).append(event)
    return event


def after(session: Session, job_id: str, seq: int, limit: int) -> Sequence[Event]:
    query = select(Event).where(Event.job_id == job_id, Event.seq > seq).order_by(Event.seq).limit(limit)
    return session.scalars(query).all()
