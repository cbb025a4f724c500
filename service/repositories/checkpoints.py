"""The checkpoint index: which steps of a job have a complete checkpoint, and where."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.models import Checkpoint


def for_job(session: Session, job_id: str) -> Sequence[Checkpoint]:
    return session.scalars(select(Checkpoint).where(Checkpoint.job_id == job_id).order_by(Checkpoint.step)).all()


def latest(session: Session, job_id: str) -> Checkpoint | None:
    query = select(Checkpoint).where(Checkpoint.job_id == job_id).order_by(Checkpoint.step.desc()).limit(1)
    return session.scalars(query).one_or_none()


def find(session: Session, job_id: str, ref: str) -> Checkpoint | None:
    """By 'latest', a step number, or a checkpoint id."""
    if ref == "latest":
        return latest(session, job_id)
    query = select(Checkpoint).where(Checkpoint.job_id == job_id)
    if ref.isdigit():
        return session.scalars(query.where(Checkpoint.step == int(ref))).one_or_none()
    return session.scalars(query.where(Checkpoint.id == ref)).one_or_none()


def newest_first(session: Session, job_id: str) -> Sequence[Checkpoint]:
    return session.scalars(select(Checkpoint).where(Checkpoint.job_id == job_id).order_by(Checkpoint.step.desc())).all()
