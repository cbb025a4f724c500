"""Metric points: written in batches by workers, read in step order by the API."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.models import MetricRow
from service.records import STORED_COLUMNS as COLUMNS, Metric


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


# A page of points as Postgres writes it: the database formats the floats (the bulk of the work) in C, and
# concatenating text is a third cheaper than json_agg over rows. float8::text is the shortest exact form;
# null, NaN and infinities go out as null, as pydantic writes them (JSON has no NaN).
_PG_PAGE = text(
    """
SELECT '[' || string_agg(
    '{"step":' || step
    || ',"critic_loss":' || CASE WHEN abs(critic_loss) < 1.7e308 THEN critic_loss::text ELSE 'null' END
    || ',"generator_loss":' || CASE WHEN abs(generator_loss) < 1.7e308 THEN generator_loss::text ELSE 'null' END
    || ',"wasserstein_estimate":'
    || CASE WHEN abs(wasserstein_estimate) < 1.7e308 THEN wasserstein_estimate::text ELSE 'null' END
    || ',"gradient_penalty":' || CASE WHEN abs(gradient_penalty) < 1.7e308 THEN gradient_penalty::text ELSE 'null' END
    || ',"seconds_per_step":' || CASE WHEN abs(seconds_per_step) < 1.7e308 THEN seconds_per_step::text ELSE 'null' END
    || ',"exact_w1":' || coalesce((measures->'exact_w1')::text, 'null')
    || ',"modes_covered":' || coalesce((measures->'modes_covered')::text, 'null')
    || ',"measures":' || coalesce(measures::text, 'null')
    || ',"time":"' || to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || '"}',
    ',' ORDER BY step) || ']',
  max(step)
FROM (SELECT * FROM metrics WHERE job_id = :job_id AND step > :after ORDER BY step LIMIT :limit) AS page
"""
)


def page_json(session: Session, job_id: str, after_step: int, limit: int) -> tuple[str, int | None]:
    """Up to `limit` points after a step, in step order, as the JSON array of Metric objects (the shape
    `Metric.of(row).model_dump(mode="json")` gives each), and the step to continue after, if any follow.

    Built by Postgres itself there, else straight from the columns: a page of thousands of points
    builds no model per point, and a million-point job reads in seconds.
    """
    table = cast(Table, MetricRow.__table__)
    if session.get_bind().dialect.name == "postgresql":
        items, last = session.execute(_PG_PAGE, {"job_id": job_id, "after": after_step, "limit": limit}).one()
        items = items or "[]"
    else:
        query = (
            select(*(table.c[name] for name in COLUMNS))
            .where(table.c.job_id == job_id, table.c.step > after_step)
            .order_by(table.c.step)
            .limit(limit)
        )
        rows = session.execute(query).mappings().all()
        items = json.dumps([Metric.json_of(row) for row in rows], separators=(",", ":"), allow_nan=False)
        last = rows[-1]["step"] if rows else None
    if last is None:
        return items, None
    more = session.scalar(select(table.c.step).where(table.c.job_id == job_id, table.c.step > last).limit(1))
    return items, last if more is not None else None
