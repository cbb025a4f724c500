"""Metric points: written in batches by workers, read in step order by the API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.models import MetricRow


def insert_ignoring_duplicates(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert points; a step already stored for the job is kept as it was (once, never twice)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(MetricRow).values(list(rows)).on_conflict_do_nothing(index_elements=["job_id", "step"]))


def max_step(session: Session, job_id: str) -> int:
    return session.scalar(select(func.coalesce(func.max(MetricRow.step), 0)).where(MetricRow.job_id == job_id)) or 0


def after(session: Session, job_id: str, after_step: int, limit: int) -> Sequence[MetricRow]:
    query = (
        select(MetricRow)
        .where(MetricRow.job_id == job_id, MetricRow.step > after_step)
        .order_by(MetricRow.step)
        .limit(limit)
    )
    return session.scalars(query).all()
