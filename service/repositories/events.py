"""The per-job event log: numbered in commit order, replayed by the SSE stream."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.models import Event, Job
from service.records import EventType


def append(session: Session, job_id: str, kind: EventType, data: Any) -> Event:
    """Add an event numbered one past the job's last.

    The UPDATE … RETURNING takes the job row's write lock until commit, so concurrent writers
    (a worker and a cancelling request) number their events in the order they commit.
    """
    seq = session.execute(
        update(Job).where(Job.id == job_id).values(event_seq=Job.event_seq + 1).returning(Job.event_seq)
    ).scalar_one()
    return add(session, job_id, seq, kind, data)


def add(session: Session, job_id: str, seq: int, kind: EventType, data: Any) -> Event:
    """Add event number `seq`."""
    event = Event(job_id=job_id, seq=seq, type=kind.value, data=data)
    session.add(event)
    return event


def after(session: Session, job_id: str, seq: int, limit: int) -> Sequence[Event]:
    query = select(Event).where(Event.job_id == job_id, Event.seq > seq).order_by(Event.seq).limit(limit)
    return session.scalars(query).all()
