"""API keys: made random, shown once, stored as a SHA-256 hash, checked on every request."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session

from service.db import Executor
from service.principal import Principal
from service.repositories import keys as key_repo

KEY_PREFIX = "wgan_"
PREFIX_CHARS = 8
SECRET_BYTES = 32


def hash_key(key: str) -> str:
    # A plain hash is right for 256-bit random keys: there is nothing to brute-force, unlike passwords.
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class NewKey:
    id: str
    owner: str
    name: str
    prefix: str
    key: str
    is_admin: bool


def create_key(session: Session, *, name: str, owner: str | None = None, is_admin: bool = False) -> NewKey:
    """Make a key for `owner` (created if new; defaults to `name`). The key is returned only here."""
    owner_row = key_repo.owner_named(session, owner or name)
    visible = secrets.token_hex(PREFIX_CHARS // 2)
    key = f"{KEY_PREFIX}{visible}_{secrets.token_urlsafe(SECRET_BYTES)}"
    row = key_repo.add(session, owner=owner_row, name=name, prefix=visible, key_hash=hash_key(key), is_admin=is_admin)
    return NewKey(id=row.id, owner=owner_row.name, name=name, prefix=visible, key=key, is_admin=is_admin)


def stored_hash(key: str) -> str | None:
    """The hash a key of this service is stored by; None for a string that cannot be one (no read needed)."""
    return hash_key(key) if key.startswith(KEY_PREFIX) else None


def authenticate(session: Executor, key: str) -> Principal | None:
    key_hash = stored_hash(key)
    if key_hash is None:
        return None
    return key_repo.active_by_hash(session, key_hash)
