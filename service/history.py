"""A job's metric history downsampled to a fixed number of buckets, whatever its length.

Each bucket keeps, per series, the minimum, the maximum and the last value of its points (the min/max
envelope of M4, Jugel et al., "M4: A Visualization-Oriented Time Series Data Aggregation", VLDB 2014):
drawn as a band with the last value as its line, a spike is never averaged away, and the line ends on
the job's true latest value. Buckets are built from the rollups kept as points are stored
(service.repositories.rollups), so a million-point job costs what a thousand-point one does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.models import MetricRow
from service.records import Metric
from service.repositories import rollups
from service.repositories.rollups import SIZES


@dataclass(frozen=True)
class Plan:
    """How steps first…last become buckets: `width` steps each from `origin`, built from blocks of
    `size` steps (1: the points themselves). origin and width are multiples of size."""

    size: int
    origin: int
    width: int


def plan(first: int, last: int, buckets: int) -> Plan:
    """The coarsest blocks that still give `buckets` buckets (at most) over steps first…last."""
    wanted = max(1, math.ceil((last - first + 1) / buckets))
    size = max((s for s in (1, *SIZES) if s <= wanted), default=1)
    origin = first // size * size
    # Aligning the origin down to a block may lengthen the span by up to a block: size the width on it.
    wanted = max(1, math.ceil((last - origin + 1) / buckets))
    width = math.ceil(wanted / size) * size
    return Plan(size, origin, width)


class SeriesHistory(BaseModel):
    min: list[float | None] = Field(description="The smallest finite value in each bucket.")
    max: list[float | None] = Field(description="The largest finite value in each bucket.")
    last: list[float | None] = Field(description="The value at each bucket's last step (null if not finite).")


class HistorySeries(BaseModel):
    critic_loss: SeriesHistory
    generator_loss: SeriesHistory
    wasserstein_estimate: SeriesHistory
    gradient_penalty: SeriesHistory
    seconds_per_step: SeriesHistory


class MetricHistory(BaseModel):  # a job's metrics downsampled: columns, one entry per bucket
    points: int = Field(description="Metric points the job has recorded in the range.")
    bucket_steps: int = Field(description="Steps each bucket spans (the last may be partly empty).")
    last_event_id: int = Field(
        description="The job's newest event when the history was read: open the event stream with "
        "`?last_event_id=` (or the Last-Event-ID header) set to it to follow on from here, missing nothing."
    )
    first_step: list[int] = Field(description="Each bucket's first recorded step.")
    last_step: list[int] = Field(description="Each bucket's last recorded step: where its `last` values are.")
    count: list[int] = Field(description="Points in each bucket.")
    series: HistorySeries
    measured: list[Metric] = Field(
        description="Points that carry measures (checkpoint steps): every one, or where a bucket holds "
        "several, its last."
    )


def read(
    session: Session,
    job_id: str,
    buckets: int,
    last_event_id: int,
    from_step: int | None = None,
    to_step: int | None = None,
) -> MetricHistory:
    """The job's metrics from `from_step` to `to_step` (its whole run by default) in at most `buckets`
    buckets. A bound inside a block widens to the whole block; each bucket's steps say what it holds."""
    extent = rollups.extent(session, job_id)
    first = max(extent.first_step or 0, from_step or 0)
    last = min(extent.last_step or 0, to_step if to_step is not None else extent.last_step or 0)
    names = rollups.SERIES
    if extent.points == 0 or first > last:
        empty = SeriesHistory(min=[], max=[], last=[])
        return MetricHistory(
            points=0,
            bucket_steps=0,
            last_event_id=last_event_id,
            first_step=[],
            last_step=[],
            count=[],
            series=HistorySeries(**{name: empty for name in names}),
            measured=[],
        )
    chosen = plan(first, last, buckets)
    rows = rollups.buckets(session, job_id, chosen.size, chosen.origin, chosen.width, first, last)
    series = {
        name: SeriesHistory(
            min=[row.lows[name] for row in rows],
            max=[row.highs[name] for row in rows],
            last=[row.lasts[name] for row in rows],
        )
        for name in names
    }
    return MetricHistory(
        points=sum(row.count for row in rows),
        bucket_steps=chosen.width,
        last_event_id=last_event_id,
        first_step=[row.first_step for row in rows],
        last_step=[row.last_step for row in rows],
        count=[row.count for row in rows],
        series=HistorySeries(**series),
        measured=[Metric.of(row) for row in _measured(session, job_id, chosen, rows[0].first_step, rows[-1].last_step)],
    )


def _measured(session: Session, job_id: str, chosen: Plan, first: int, last: int) -> list[MetricRow]:
    # The partial index ix_metrics_measured holds only these rows: a few per job, however long it ran.
    in_range = (
        MetricRow.job_id == job_id,
        MetricRow.measures.is_not(None),
        MetricRow.step >= first,
        MetricRow.step <= last,
    )
    bucket = (MetricRow.step - chosen.origin) // chosen.width
    lasts = select(func.max(MetricRow.step).label("step")).where(*in_range).group_by(bucket).subquery()
    query = (
        select(MetricRow)
        .join(lasts, MetricRow.step == lasts.c.step)
        .where(MetricRow.job_id == job_id)
        .order_by(MetricRow.step)
    )
    return list(session.scalars(query).all())
