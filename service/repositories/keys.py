"""API keys and their owners. Keys are stored only as SHA-256 hashes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, or_, select
from sqlalchemy.orm import Session

from service import driver_sql
from service.db import Executor, connection_of
from service.models import ApiKey, Owner, utcnow
from service.principal import Principal


def owner_named(session: Session, name: str) -> Owner:
    owner = session.scalars(select(Owner).where(Owner.name == name)).one_or_none()
    if owner is None:
        owner = Owner(name=name)
        session.add(owner)
        session.flush()
    return owner


def add(session: Session, *, owner: Owner, name: str, prefix: str, key_hash: str, is_admin: bool) -> ApiKey:
    key = ApiKey(owner_id=owner.id, name=name, prefix=prefix, key_hash=key_hash, is_admin=is_admin)
    session.add(key)
    session.flush()
    return key


# The caller's columns, as (owner id, key id, is admin): what a Principal is made of.
PRINCIPAL_COLUMNS = (ApiKey.owner_id, ApiKey.id, ApiKey.is_admin)


def principal_of(row: Sequence[Any]) -> tuple[Principal, Sequence[Any]]:
    """The Principal of a row that starts with PRINCIPAL_COLUMNS, and the rest of the row."""
    owner_id, key_id, is_admin, *rest = row
    return Principal(owner_id=owner_id, key_id=key_id, is_admin=is_admin), rest


def active_with_hash() -> ColumnElement[bool]:
    """The unrevoked key whose hash is bound as `:key_hash`: a condition other reads join the key by."""
    return and_(ApiKey.key_hash == bindparam("key_hash"), ApiKey.revoked_at.is_(None))


# Built once, for the reason service.repositories.jobs builds its read by id once: every request makes it.
_ACTIVE_BY_HASH = select(*PRINCIPAL_COLUMNS).where(active_with_hash())


def active_by_hash(session: Executor, key_hash: str) -> Principal | None:
    """Who the unrevoked key with this hash stands for. Read as columns, not an ApiKey: every request makes
    this read, and an ORM object costs more than the query."""
    # On the session's connection: the ORM's statement handling costs more than this one-row read.
    row = driver_sql.first(connection_of(session), _ACTIVE_BY_HASH, {"key_hash": key_hash})
    return None if row is None else principal_of(row)[0]


def is_active(session: Session, key_id: str) -> bool:
    query = select(ApiKey.id).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
    return session.scalars(query).first() is not None


def all_with_owners(session: Session) -> Sequence[tuple[ApiKey, Owner]]:
    rows = session.execute(select(ApiKey, Owner).join(Owner, ApiKey.owner_id == Owner.id).order_by(ApiKey.created_at))
    return [(key, owner) for key, owner in rows.tuples()]


def revoke(session: Session, ref: str) -> ApiKey | None:
    """Revoke by key id or by the key's visible prefix."""
    key = session.scalars(select(ApiKey).where(or_(ApiKey.id == ref, ApiKey.prefix == ref))).one_or_none()
    if key is not None and key.revoked_at is None:
        key.revoked_at = utcnow()
    return key


def count_active(session: Session) -> int:
    return len(session.scalars(select(ApiKey.id).where(ApiKey.revoked_at.is_(None))).all())
