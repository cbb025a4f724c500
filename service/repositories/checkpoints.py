"""The checkpoint index: which steps of a job have a complete checkpoint, and where."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, and_, false, select, true
from sqlalchemy.orm import Session

from service.models import Checkpoint, Job, is_id
from service.principal import Principal
from service.repositories.jobs import scoped


def for_job(session: Session, job_id: str) -> Sequence[Checkpoint]:
    return session.scalars(select(Checkpoint).where(Checkpoint.job_id == job_id).order_by(Checkpoint.step)).all()


def find_visible(session: Session, job_id: str, principal: Principal, ref: str) -> tuple[bool, Checkpoint | None]:
    """(whether the job exists for this principal, its checkpoint `ref`: 'latest', 'best' (by the job's
    primary measure), a step number or a checkpoint id) in one query, as sampling asks for both on every
    request."""
    if not is_id(job_id):
        return False, None
    match: ColumnElement[bool]
    if ref == "latest":
        match = true()
    elif ref == "best":
        match = Checkpoint.id == Job.summary["best"]["checkpoint_id"].as_string()
    elif ref.isascii() and ref.isdigit():
        match = Checkpoint.step == int(ref)
    elif is_id(ref):
        match = Checkpoint.id == ref
    else:
        match = false()
    query = scoped(
        select(Job.id, Checkpoint)
        .outerjoin(Checkpoint, and_(Checkpoint.job_id == Job.id, match))
        .where(Job.id == job_id)
        .order_by(Checkpoint.step.desc())
        .limit(1),
        principal,
    )
    row = session.execute(query).first()
    return (False, None) if row is None else (True, row[1])


def newest_first(session: Session, job_id: str) -> Sequence[Checkpoint]:
    return session.scalars(select(Checkpoint).where(Checkpoint.job_id == job_id).order_by(Checkpoint.step.desc())).all()
