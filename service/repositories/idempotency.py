"""Idempotency-Key records: the first request's fingerprint, and the job it made once done."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from service.db import Executor
from service.models import IdempotencyRecord


def find(session: Session, owner_id: str, key: str) -> IdempotencyRecord | None:
    query = select(IdempotencyRecord).where(IdempotencyRecord.owner_id == owner_id, IdempotencyRecord.key == key)
    return session.scalars(query).one_or_none()


def attach(session: Executor, owner_id: str, key: str, job_id: str) -> None:
    """Name the job a key's first request made: its replays return that job from now on."""
    session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.owner_id == owner_id, IdempotencyRecord.key == key)
        .values(job_id=job_id)
    )


def drop_expired(session: Session, owner_id: str, key: str, created_before: datetime) -> None:
    session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.owner_id == owner_id,
            IdempotencyRecord.key == key,
            IdempotencyRecord.created_at < created_before,
        )
    )


def drop(session: Session, owner_id: str, key: str) -> None:
    session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.owner_id == owner_id, IdempotencyRecord.key == key)
    )
