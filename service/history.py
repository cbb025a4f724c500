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
from service.records import MEASURES_DOC
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
    """How to read steps first…last as `buckets` buckets at most, reading as few rows as possible: the
    points themselves while there are few, else the finest blocks that number no more than the buckets
    (one bucket each), and groups of the coarsest blocks only for fewer buckets than those make."""
    wanted = math.ceil((last - first + 1) / buckets)
    if wanted < SIZES[0]:
        return Plan(1, first, wanted)
    for size in SIZES:
        if last // size - first // size + 1 <= buckets:
            return Plan(size, first // size * size, size)
    size = SIZES[-1]
    origin = first // size * size
    width = math.ceil(math.ceil((last - origin + 1) / buckets) / size) * size
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


class MeasuredHistory(BaseModel):  # the sparse measures as columns: every measured point, or a bucket's last
    step: list[int] = Field(
        description="Steps that carry measures (checkpoint steps): every one, or where a bucket holds several, "
        "its last."
    )
    measures: list[dict[str, float]] = Field(description=f"What was measured at each. {MEASURES_DOC}")


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
    measured: MeasuredHistory


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
            measured=MeasuredHistory(step=[], measures=[]),
        )
    chosen = plan(first, last, buckets)
    got = rollups.buckets(session, job_id, chosen.size, chosen.origin, chosen.width, first, last)
    series = {
        name: SeriesHistory.model_construct(min=got.lows[name], max=got.highs[name], last=got.lasts[name])
        for name in names
    }
    # Built without validation: every value came from typed columns, and a history is thousands of them.
    return MetricHistory.model_construct(
        points=sum(got.count),
        bucket_steps=chosen.width,
        last_event_id=last_event_id,
        first_step=got.first_step,
        last_step=got.last_step,
        count=got.count,
        series=HistorySeries.model_construct(None, **series),
        measured=_measured(session, job_id, chosen, buckets, got.first_step[0], got.last_step[-1]),
    )


def _measured(session: Session, job_id: str, chosen: Plan, buckets: int, first: int, last: int) -> MeasuredHistory:
    """Each bucket's last measured point. Read straight from the partial index ix_metrics_measured (it
    holds only these rows) while there are few; grouped by the database for a job that measured more."""
    in_range = (
        MetricRow.job_id == job_id,
        MetricRow.measures.is_not(None),
        MetricRow.step >= first,
        MetricRow.step <= last,
    )
    few = 2 * buckets
    rows = session.execute(
        select(MetricRow.step, MetricRow.measures).where(*in_range).order_by(MetricRow.step).limit(few + 1)
    ).all()
    if len(rows) > few:
        bucket = (MetricRow.step - chosen.origin) // chosen.width
        lasts = select(func.max(MetricRow.step).label("step")).where(*in_range).group_by(bucket).subquery()
        rows = session.execute(
            select(MetricRow.step, MetricRow.measures)
            .join(lasts, MetricRow.step == lasts.c.step)
            .where(MetricRow.job_id == job_id)
            .order_by(MetricRow.step)
        ).all()
    newest: dict[int, tuple[int, dict[str, float]]] = {}
    for step, measures in rows:  # in step order: a bucket's later point replaces its earlier
        newest[(step - chosen.origin) // chosen.width] = (step, measures)
    kept = list(newest.values())
    return MeasuredHistory.model_construct(step=[step for step, _ in kept], measures=[m for _, m in kept])
