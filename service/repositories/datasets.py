"""Uploaded data sets, each owned by one owner."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.models import Dataset, Job, is_id
from service.principal import Principal


def get(session: Session, dataset_id: str, principal: Principal) -> Dataset | None:
    if not is_id(dataset_id):
        return None
    query = select(Dataset).where(Dataset.id == dataset_id)
    if not principal.is_admin:
        query = query.where(Dataset.owner_id == principal.owner_id)
    return session.scalars(query).one_or_none()


def for_owner(session: Session, principal: Principal) -> Sequence[Dataset]:
    query = select(Dataset).order_by(Dataset.created_at.desc())
    if not principal.is_admin:
        query = query.where(Dataset.owner_id == principal.owner_id)
    return session.scalars(query).all()


def in_use(session: Session, dataset_id: str) -> bool:
    return session.scalars(select(Job.id).where(Job.dataset_id == dataset_id).limit(1)).first() is not None


def stored_bytes(session: Session, owner_id: str) -> int:
    return (
        session.scalar(select(func.coalesce(func.sum(Dataset.size_bytes), 0)).where(Dataset.owner_id == owner_id)) or 0
    )
