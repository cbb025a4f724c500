"""The per-job event log: numbered in commit order, replayed by the SSE stream."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Text, cast, select, update
from sqlalchemy.orm import Session

from service.db import Executor
from service.models import Event, EventLog, Job
from service.records import EventType
from service.repositories import rows


def append(session: Session, job_id: str, kind: EventType, data: Any) -> Event:
    """Add an event numbered one past the job's last.

    The UPDATE … RETURNING takes the job row's write lock until commit, so concurrent writers
    (a worker and a cancelling request) number their events in the order they commit.
    """
    seq = session.execute(
        update(Job).where(Job.id == job_id).values(event_seq=Job.event_seq + 1).returning(Job.event_seq)
    ).scalar_one()
    return add(session, job_id, seq, kind, data)


def add(session: Executor, job_id: str, seq: int, kind: EventType, data: Any) -> Event:
    """Write event number `seq` (one INSERT: the object returned is what was written, for publishing)."""
    return rows.insert(session, Event, job_id=job_id, seq=seq, type=kind.value, data=data)


@dataclass(frozen=True)
class StoredEvent:
    """An event as its log holds it: the data still the JSON text it was stored as."""

    seq: int
    type: str
    raw: str


def stored_after(session: Session, log: type[EventLog], subject: Any, seq: int, limit: int) -> list[StoredEvent]:
    """Events of one log (`subject`: its Event.job_id or ExperimentEvent.experiment_id column compared to an
    id) after `seq`, their data as text: a replay sends it on without decoding and encoding it again."""
    query = select(log.seq, log.type, cast(log.data, Text)).where(subject, log.seq > seq).order_by(log.seq).limit(limit)
    return [StoredEvent(seq, kind, raw) for seq, kind, raw in session.execute(query)]


def after(session: Session, job_id: str, seq: int, limit: int) -> list[StoredEvent]:
    return stored_after(session, Event, Event.job_id == job_id, seq, limit)
