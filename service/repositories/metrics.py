"""Metric points: written in batches by workers, read in step order by the API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import RowMapping, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.models import MetricRow
from service.records import STORED_COLUMNS as COLUMNS


def insert_ignoring_duplicates(session: Session, rows: Sequence[dict[str, Any]]) -> set[int]:
    """Insert points; a step already stored for the job is kept as it was (once, never twice).
    Returns the steps that were new."""
    if not rows:
        return set()
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # The table's insert, its rows as parameters: one statement compiled once and cached, sent as
    # batched multi-row VALUES (insertmanyvalues) rather than compiled afresh for every batch's values.
    table = cast(Table, MetricRow.__table__)
    statement = insert(table).on_conflict_do_nothing(index_elements=["job_id", "step"]).returning(table.c.step)
    return set(session.execute(statement, list(rows)).scalars().all())


def max_step(session: Session, job_id: str) -> int:
    return session.scalar(select(func.coalesce(func.max(MetricRow.step), 0)).where(MetricRow.job_id == job_id)) or 0


def after(session: Session, job_id: str, after_step: int, limit: int) -> list[RowMapping]:
    """Points after a step, in step order, as columns: a page of thousands builds no ORM object."""
    table = cast(Table, MetricRow.__table__)
    query = (
        select(*(table.c[name] for name in COLUMNS))
        .where(table.c.job_id == job_id, table.c.step > after_step)
        .order_by(table.c.step)
        .limit(limit)
    )
    return list(session.execute(query).mappings())
