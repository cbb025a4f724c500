"""The checkpoint index: which steps of a job have a complete checkpoint, and where."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, false, select, true
from sqlalchemy.orm import Session

from service.models import CheckpointRow, Job, is_id
from service.principal import Principal
from service.repositories.jobs import scoped

MAX_STEP = 2**31 - 1  # checkpoints.step is a 32-bit integer


def for_job(session: Session, job_id: str) -> Sequence[CheckpointRow]:
    return session.scalars(
        select(CheckpointRow).where(CheckpointRow.job_id == job_id).order_by(CheckpointRow.step)
    ).all()


def find_visible(
    session: Session, job_id: str, principal: Principal, ref: str
) -> tuple[dict[str, Any] | None, CheckpointRow | None]:
    """(the job's spec if it exists for this principal, else None; its checkpoint `ref`: 'latest', 'best'
    (by the job's primary measure), a step number or a checkpoint id) in one query, as sampling asks for
    both on every request."""
    if not is_id(job_id):
        return None, None
    match: ColumnElement[bool]
    if ref == "latest":
        match = true()
    elif ref == "best":
        match = CheckpointRow.id == Job.summary["best"]["checkpoint_id"].as_string()
    elif ref.isascii() and ref.isdigit():
        # A step past what the column holds names no checkpoint (and would be an error to send).
        match = CheckpointRow.step == int(ref) if int(ref) <= MAX_STEP else false()
    elif is_id(ref):
        match = CheckpointRow.id == ref
    else:
        match = false()
    query = scoped(
        select(Job.spec, CheckpointRow)
        .outerjoin(CheckpointRow, and_(CheckpointRow.job_id == Job.id, match))
        .where(Job.id == job_id)
        .order_by(CheckpointRow.step.desc())
        .limit(1),
        principal,
    )
    row = session.execute(query).first()
    return (None, None) if row is None else (row[0], row[1])


def newest_first(session: Session, job_id: str) -> Sequence[CheckpointRow]:
    return session.scalars(
        select(CheckpointRow).where(CheckpointRow.job_id == job_id).order_by(CheckpointRow.step.desc())
    ).all()


def drop_step(session: Session, job_id: str, step: int) -> None:
    session.execute(delete(CheckpointRow).where(CheckpointRow.job_id == job_id, CheckpointRow.step == step))
