"""Uploaded data sets, each owned by one owner."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from service.db import Executor, connection_of
from service.models import Dataset, Job, is_id
from service.principal import Principal


def _visible(query: Select[Any], dataset_id: str, principal: Principal) -> Select[Any]:
    query = query.where(Dataset.id == dataset_id)
    return query if principal.is_admin else query.where(Dataset.owner_id == principal.owner_id)


def get(session: Session, dataset_id: str, principal: Principal) -> Dataset | None:
    if not is_id(dataset_id):
        return None
    return session.scalars(_visible(select(Dataset), dataset_id, principal)).one_or_none()


class Basis(NamedTuple):
    """What a job's spec is resolved against (service.jobs.resolve_spec): the data set's kind, the shape
    of one item, and its name."""

    kind: str
    shape: list[Any]
    name: str


def basis(session: Executor, dataset_id: str, principal: Principal) -> Basis | None:
    """The Basis of a data set the principal may use, read as columns: a submission may run on a Core
    connection (service.db.Database.begin), where no ORM object loads."""
    if not is_id(dataset_id):
        return None
    query = _visible(select(Dataset.kind, Dataset.shape, Dataset.name), dataset_id, principal)
    row = connection_of(session).execute(query).one_or_none()
    return None if row is None else Basis(*row)


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
