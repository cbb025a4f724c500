"""The checkpoint index: which steps of a job have a complete checkpoint, and where."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, and_, delete, false, select, true
from sqlalchemy.orm import Session

from service.models import CheckpointRow, Job, is_id
from service.principal import Principal
from service.repositories.jobs import scoped


def for_job(session: Session, job_id: str) -> Sequence[CheckpointRow]:
    return session.scalars(
        select(CheckpointRow).where(CheckpointRow.job_id == job_id).order_by(CheckpointRow.step)
    ).all()


def find_visible(session: Session, job_id: str, principal: Principal, ref: str) -> tuple[bool, CheckpointRow | None]:
    """(whether the job exists for this principal, its checkpoint `ref`: 'latest', 'best' (by the job's
    primary measure), a step number or a checkpoint id) in one query, as sampling asks for both on every
    request."""
    if not is_id(job_id):
        return False, None
    match: ColumnElement[bool]
    if ref == "latest":
        match = true()
    elif ref == "best":
        match = CheckpointRow.id == Job.summary["best"]["checkpoint_id"].as_string()
    elif ref.isascii() and ref.isdigit():
        match = CheckpointRow.step == int(ref)
    elif is_id(ref):
        match = CheckpointRow.id == ref
    else:
        match = false()
    query = scoped(
        select(Job.id, CheckpointRow)
        .outerjoin(CheckpointRow, and_(CheckpointRow.job_id == Job.id, match))
        .where(Job.id == job_id)
        .order_by(CheckpointRow.step.desc())
        .limit(1),
        principal,
    )
    row = session.execute(query).first()
    return (False, None) if row is None else (True, row[1])


def newest_first(session: Session, job_id: str) -> Sequence[CheckpointRow]:
    return session.scalars(
        select(CheckpointRow).where(CheckpointRow.job_id == job_id).order_by(CheckpointRow.step.desc())
    ).all()


def drop_step(session: Session, job_id: str, step: int) -> None:
    session.execute(delete(CheckpointRow).where(CheckpointRow.job_id == job_id, CheckpointRow.step == step))
