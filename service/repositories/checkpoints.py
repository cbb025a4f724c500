"""The checkpoint index: which steps of a job have a complete checkpoint, and where."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, and_, bindparam, delete, false, select, true
from sqlalchemy.orm import Session

from service import driver_sql
from service.db import Executor, connection_of
from service.models import CheckpointRow, Job, is_id
from service.principal import Principal
from service.repositories.jobs import with_key
from service.repositories.keys import principal_of

MAX_STEP = 2**31 - 1  # checkpoints.step is a 32-bit integer


def for_job(session: Session, job_id: str) -> Sequence[CheckpointRow]:
    return session.scalars(
        select(CheckpointRow).where(CheckpointRow.job_id == job_id).order_by(CheckpointRow.step)
    ).all()


RefKind = Literal["latest", "best", "step", "id", "none"]


@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    """A checkpoint as sampling and export use it: its columns, without an ORM object (an ORM load was a
    tenth of a sample request's CPU outside the forward pass, bench sampling)."""

    id: str
    job_id: str
    step: int
    artifact_key: str
    sha256: str
    measures: dict[str, Any] | None


_RECORD_COLUMNS = tuple(getattr(CheckpointRow, field.name) for field in fields(CheckpointRecord))


def _matching(kind: RefKind) -> ColumnElement[bool]:
    """The checkpoint a reference of this kind names, among the job's."""
    if kind == "latest":
        return true()
    if kind == "best":
        return CheckpointRow.id == Job.summary["best"]["checkpoint_id"].as_string()
    if kind == "step":
        return CheckpointRow.step == bindparam("step")
    if kind == "id":
        return CheckpointRow.id == bindparam("checkpoint_id")
    return false()


def _with_checkpoint(query: Select[Any], kind: RefKind) -> Select[Any]:
    """`query` (which selects from jobs) with the job's checkpoint `kind` names, newest first, or NULLs."""
    return (
        query.outerjoin(CheckpointRow, and_(CheckpointRow.job_id == Job.id, _matching(kind)))
        .order_by(CheckpointRow.step.desc())
        .limit(1)
    )


@functools.cache
def _visible(kind: RefKind, of_owner: bool) -> Select[Any]:
    # Built once per kind, as jobs._by_id is: sampling runs this on every request.
    query = _with_checkpoint(select(Job.spec, *_RECORD_COLUMNS).where(Job.id == bindparam("job_id")), kind)
    return query.where(Job.owner_id == bindparam("owner_id")) if of_owner else query


@functools.cache
def _visible_with_key(kind: RefKind) -> Select[Any]:
    """_visible with the caller's columns, joined by the active key `:key_hash` that may see the job."""
    return _with_checkpoint(with_key(Job.spec, *_RECORD_COLUMNS), kind)


def _kind(ref: str) -> RefKind:
    if ref == "latest":
        return "latest"
    if ref == "best":
        return "best"
    if ref.isascii() and ref.isdigit():
        # A step past what the column holds names no checkpoint (and would be an error to send).
        return "step" if int(ref) <= MAX_STEP else "none"
    return "id" if is_id(ref) else "none"


Visible = tuple[dict[str, Any] | None, CheckpointRecord | None]


def find_visible(session: Executor, job_id: str, principal: Principal, ref: str) -> Visible:
    """(the job's spec if it exists for this principal, else None; its checkpoint `ref`: 'latest', 'best'
    (by the job's primary measure), a step number or a checkpoint id) in one query, as sampling asks for
    both on every request."""
    if not is_id(job_id):
        return None, None
    params = {**_params(job_id, ref), "owner_id": principal.owner_id}
    row = driver_sql.first(connection_of(session), _visible(_kind(ref), not principal.is_admin), params)
    if row is None:
        return None, None
    return _found(*row)


def find_visible_with_key(session: Executor, key_hash: str, job_id: str, ref: str) -> tuple[Principal, Visible] | None:
    """The caller behind the key with this hash and what find_visible finds for them, in one round trip;
    None when the key is bad or revoked or the job is not one it may see."""
    if not is_id(job_id):
        return None
    params = {**_params(job_id, ref), "key_hash": key_hash}
    row = driver_sql.first(connection_of(session), _visible_with_key(_kind(ref)), params)
    if row is None:
        return None
    principal, found = principal_of(row)
    return principal, _found(*found)


def _params(job_id: str, ref: str) -> dict[str, Any]:
    params: dict[str, Any] = {"job_id": job_id}
    kind = _kind(ref)
    if kind == "step":
        params["step"] = int(ref)
    elif kind == "id":
        params["checkpoint_id"] = ref
    return params


def _found(spec: dict[str, Any], *columns: Any) -> Visible:
    # The outer join leaves every checkpoint column NULL for a job without the checkpoint asked for.
    return spec, None if columns[0] is None else CheckpointRecord(*columns)


def newest_first(session: Session, job_id: str) -> Sequence[CheckpointRow]:
    return session.scalars(
        select(CheckpointRow).where(CheckpointRow.job_id == job_id).order_by(CheckpointRow.step.desc())
    ).all()


def drop_step(session: Session, job_id: str, step: int) -> None:
    session.execute(delete(CheckpointRow).where(CheckpointRow.job_id == job_id, CheckpointRow.step == step))
