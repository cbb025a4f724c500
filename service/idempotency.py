"""Idempotency-Key handling for job creation (IETF httpapi draft): replay, conflict, mismatch."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError

from service.db import Database
from service.errors import Conflict, InvalidInput
from service.models import IdempotencyRecord, Job, utcnow
from service.repositories import idempotency as repo

MAX_KEY_LENGTH = 255


def fingerprint(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


T = TypeVar("T")


def run_once(
    db: Database,
    owner_id: str,
    key: str,
    body: Any,
    ttl_seconds: int,
    create: Callable[[], T],
    load: Callable[[Job], T],
) -> tuple[T, bool]:
    """Create through `create` once per (owner, key). Returns (what it made, replayed).

    The record is committed before the work starts, so a second request that arrives while the
    first is still being handled sees it and gets 409 instead of making a second one. The record
    names the job made (or an experiment's first run); `load` turns that job into what a replay returns.
    """
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(
            "bad Idempotency-Key", [(("header", "Idempotency-Key"), f"1 to {MAX_KEY_LENGTH} characters")]
        )
    digest = fingerprint(body)
    try:
        with db.transaction() as session:
            repo.drop_expired(session, owner_id, key, utcnow() - timedelta(seconds=ttl_seconds))
            session.add(IdempotencyRecord(owner_id=owner_id, key=key, request_hash=digest))
    except IntegrityError:
        with db.transaction() as session:
            record = repo.find(session, owner_id, key)
            if record is None:  # the other request failed and dropped its record meanwhile
                raise Conflict("a request with this Idempotency-Key was just being handled; retry") from None
            if record.request_hash != digest:
                raise InvalidInput(
                    "this Idempotency-Key was used with a different body",
                    [(("header", "Idempotency-Key"), "already used with a different request body")],
                ) from None
            if record.job_id is None:
                raise Conflict("a request with this Idempotency-Key is still being handled") from None
            job = session.get(Job, record.job_id)
            assert job is not None
        # Outside the transaction: `load` may read in a session of its own, and one request holds one
        # pooled connection at a time (the pool never grows past its size).
        return load(job), True
    try:
        made = create()
    except BaseException:
        with db.transaction() as session:
            repo.drop(session, owner_id, key)
        raise
    return made, False
