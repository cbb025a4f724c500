"""The checkpoint index: which steps of a job have a complete checkpoint, and where."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, and_, bindparam, delete, false, select, true
from sqlalchemy.orm import Session

from service.models import CheckpointRow, Job, is_id
from service.principal import Principal

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


@functools.cache
def _visible(kind: RefKind, of_owner: bool) -> Select[Any]:
    # Built once per kind, as jobs._by_id is: sampling runs this on every request.
    match: ColumnElement[bool]
    if kind == "latest":
        match = true()
    elif kind == "best":
        match = CheckpointRow.id == Job.summary["best"]["checkpoint_id"].as_string()
    elif kind == "step":
        match = CheckpointRow.step == bindparam("step")
    elif kind == "id":
        match = CheckpointRow.id == bindparam("checkpoint_id")
    else:
        match = false()
    query = (
        select(Job.spec, *_RECORD_COLUMNS)
        .outerjoin(CheckpointRow, and_(CheckpointRow.job_id == Job.id, match))
        .where(Job.id == bindparam("job_id"))
        .order_by(CheckpointRow.step.desc())
        .limit(1)
    )
    return query.where(Job.owner_id == bindparam("owner_id")) if of_owner else query


def _kind(ref: str) -> RefKind:
    if ref == "latest":
        return "latest"
    if ref == "best":
        return "best"
    if ref.isascii() and ref.isdigit():
        # A step past what the column holds names no checkpoint (and would be an error to send).
        return "step" if int(ref) <= MAX_STEP else "none"
    return "id" if is_id(ref) else "none"


def find_visible(
    session: Session, job_id: str, principal: Principal, ref: str
) -> tuple[dict[str, Any] | None, CheckpointRecord | None]:
    """(the job's spec if it exists for this principal, else None; its checkpoint `ref`: 'latest', 'best'
    (by the job's primary measure), a step number or a checkpoint id) in one query, as sampling asks for
    both on every request."""
    if not is_id(job_id):
        return None, None
    kind = _kind(ref)
    params: dict[str, Any] = {"job_id": job_id, "owner_id": principal.owner_id}
    if kind == "step":
        params["step"] = int(ref)
    elif kind == "id":
        params["checkpoint_id"] = ref
    row = session.connection().execute(_visible(kind, not principal.is_admin), params).first()
    if row is None:
        return None, None
    spec, *columns = row
    # The outer join leaves every checkpoint column NULL for a job without the checkpoint asked for.
    return spec, None if columns[0] is None else CheckpointRecord(*columns)


def newest_first(session: Session, job_id: str) -> Sequence[CheckpointRow]:
    return session.scalars(
        select(CheckpointRow).where(CheckpointRow.job_id == job_id).order_by(CheckpointRow.step.desc())
    ).all()


def drop_step(session: Session, job_id: str, step: int) -> None:
    session.execute(delete(CheckpointRow).where(CheckpointRow.job_id == job_id, CheckpointRow.step == step))
