"""Metric rollups: a job's logged series summarised over aligned blocks of steps, kept as points are stored.

Each block of SIZES[i] steps holds its point count, first and last step, and per series the smallest and
largest finite value and the finite value at its last step. A downsampled history (service.history) groups
the blocks of the coarsest size that still resolves its buckets: for a job of a million steps that is a
few thousand rows, where grouping the points themselves would read all million of them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Integer,
    RowMapping,
    Subquery,
    Table,
    and_,
    bindparam,
    case,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from service.models import MetricRollup, MetricRow

# Steps per block, each twice the last: for any length there is a size whose blocks number between half
# and all of the buckets asked for, and a history reads those rows as they are, by primary key. The
# finest is 4 steps, so a job needs grouping of its points only while it has under 4 points per bucket.
SIZES = tuple(2**k for k in range(2, 17))
# The series a point logs every step (service.records.Metric); measures are sparse and read as points.
SERIES = ("critic_loss", "generator_loss", "wasserstein_estimate", "gradient_penalty", "seconds_per_step")
# Larger than any finite float a loss may hold: NaN and ±inf compare false (NULL on SQLite) and drop out.
FINITE_BOUND = 1.7e308
VALUE_COLUMNS = (
    "count",
    "first_step",
    "last_step",
    *(f"{name}_{kind}" for name in SERIES for kind in ("min", "max", "last")),
)


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


@dataclass
class Block:
    """One block's summary, as it is folded together from points or merged with its stored row."""

    count: int
    first_step: int
    last_step: int
    lows: dict[str, float | None] = field(default_factory=dict)
    highs: dict[str, float | None] = field(default_factory=dict)
    lasts: dict[str, float | None] = field(default_factory=dict)
    stored: bool = False  # whether its row exists yet

    @classmethod
    def of_point(cls, point: Mapping[str, Any] | RowMapping) -> Block:
        values = {name: _finite(point.get(name)) for name in SERIES}
        return cls(1, point["step"], point["step"], dict(values), dict(values), dict(values))

    @classmethod
    def of_row(cls, row: Mapping[str, Any] | RowMapping) -> Block:
        return cls(
            row["count"],
            row["first_step"],
            row["last_step"],
            {name: row[f"{name}_min"] for name in SERIES},
            {name: row[f"{name}_max"] for name in SERIES},
            {name: row[f"{name}_last"] for name in SERIES},
        )

    def merge(self, other: Block) -> None:
        """Take in a block of disjoint steps (new points never repeat a stored step)."""
        for name in SERIES:
            self.lows[name] = _pick(min, self.lows[name], other.lows[name])
            self.highs[name] = _pick(max, self.highs[name], other.highs[name])
            if other.last_step > self.last_step:
                self.lasts[name] = other.lasts[name]
        self.count += other.count
        self.first_step = min(self.first_step, other.first_step)
        self.last_step = max(self.last_step, other.last_step)

    def copy(self) -> Block:
        return Block(self.count, self.first_step, self.last_step, dict(self.lows), dict(self.highs), dict(self.lasts))

    def columns(self, job_id: str, key: tuple[int, int]) -> dict[str, Any]:
        """Its row in metric_rollups."""
        row: dict[str, Any] = {"job_id": job_id, "size": key[0], "block": key[1]}
        row.update(count=self.count, first_step=self.first_step, last_step=self.last_step)
        for name in SERIES:
            row[f"{name}_min"], row[f"{name}_max"] = self.lows[name], self.highs[name]
            row[f"{name}_last"] = self.lasts[name]
        return row


def _pick(choose: Any, a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return float(choose(a, b))


def fold(points: Iterable[Mapping[str, Any] | RowMapping]) -> dict[tuple[int, int], Block]:
    """The blocks, at every size, that `points` (each with its step) fall into."""
    blocks: dict[tuple[int, int], Block] = {}
    finest = SIZES[0]
    for point in points:
        _merge_into(blocks, (finest, point["step"] // finest), Block.of_point(point))
    # Each coarser size from the one below it: a block is the merge of the blocks inside it.
    for below, size in itertools.pairwise(SIZES):
        for (s, number), summary in list(blocks.items()):
            if s == below:
                _merge_into(blocks, (size, number * below // size), summary.copy())
    return blocks


def _merge_into(blocks: dict[tuple[int, int], Block], key: tuple[int, int], new: Block) -> None:
    if key in blocks:
        blocks[key].merge(new)
    else:
        blocks[key] = new


def add(session: Session, job_id: str, points: Sequence[Mapping[str, Any]]) -> None:
    """Fold newly stored points into the job's blocks. The caller holds the job's row lock (it numbers an
    event in the same transaction), so no other writer merges into these blocks meanwhile."""
    if not points:
        return
    blocks = fold(points)
    table = cast(Table, MetricRollup.__table__)
    by_size: dict[int, list[int]] = {}
    for size, number in blocks:
        by_size.setdefault(size, []).append(number)
    # One read of every block touched, at every size; Core rows, not ORM objects: this runs on every record.
    touched = or_(*(and_(table.c.size == size, table.c.block.in_(numbers)) for size, numbers in by_size.items()))
    for row in session.execute(select(table).where(table.c.job_id == job_id, touched)).mappings():
        merged = Block.of_row(row)
        merged.merge(blocks[(row["size"], row["block"])])
        blocks[(row["size"], row["block"])] = merged
        merged.stored = True
    fresh = [b.columns(job_id, key) for key, b in blocks.items() if not b.stored]
    updated = [b.columns(job_id, key) for key, b in blocks.items() if b.stored]
    if fresh:
        session.execute(insert(table), fresh)
    if updated:
        values: dict[str, Any] = {name: bindparam(f"new_{name}") for name in VALUE_COLUMNS}
        statement = (
            update(table)
            .where(
                table.c.job_id == bindparam("key_job_id"),
                table.c.size == bindparam("key_size"),
                table.c.block == bindparam("key_block"),
            )
            .values(values)
        )
        session.execute(
            statement,
            [
                {"key_job_id": job_id, "key_size": row["size"], "key_block": row["block"]}
                | {f"new_{name}": row[name] for name in VALUE_COLUMNS}
                for row in updated
            ],
        )


@dataclass(frozen=True)
class Extent:
    """How many points a job has stored, and the steps they span (None for none yet)."""

    points: int
    first_step: int | None
    last_step: int | None


def extent(session: Session, job_id: str) -> Extent:
    # The coarsest blocks: a handful of rows even for a million points.
    count, first, last = session.execute(
        select(func.sum(MetricRollup.count), func.min(MetricRollup.first_step), func.max(MetricRollup.last_step)).where(
            MetricRollup.job_id == job_id, MetricRollup.size == SIZES[-1]
        )
    ).one()
    return Extent(int(count or 0), first, last)


@dataclass(frozen=True)
class Buckets:
    """A downsampled history as columns, one entry per bucket: its points and steps, and per series the
    minimum, maximum and last value of its points."""

    count: list[int]
    first_step: list[int]
    last_step: list[int]
    lows: dict[str, list[float | None]]
    highs: dict[str, list[float | None]]
    lasts: dict[str, list[float | None]]


def _finite_sql(column: Any) -> ColumnElement[Any]:
    return case((and_(column > -FINITE_BOUND, column < FINITE_BOUND), column), else_=None)


def buckets(session: Session, job_id: str, size: int, origin: int, width: int, first: int, last: int) -> Buckets:
    """The job's points from step `first` to `last` in buckets of `width` steps from `origin`.

    size 1 reads the points themselves; any of SIZES reads that size's blocks, which `origin` and `width`
    must then be multiples of, so every block lies inside one bucket and the extremes are exact. A width of
    one point or one block reads its rows as they are, by primary key: the common case, and the fast one.
    """
    n = len(SERIES)
    if size == 1 and width == 1:
        values = [_finite_sql(getattr(MetricRow, name)) for name in SERIES]
        rows = session.execute(
            select(MetricRow.step, *values)
            .where(MetricRow.job_id == job_id, MetricRow.step >= first, MetricRow.step <= last)
            .order_by(MetricRow.step)
        ).all()
        columns = list(zip(*rows, strict=True)) or [()] * (1 + n)
        steps, series = list(columns[0]), [list(c) for c in columns[1:]]
        return Buckets([1] * len(steps), steps, steps, _named(series), _named(series), _named(series))
    if width == size:
        table = cast(Table, MetricRollup.__table__)
        rows = session.execute(
            select(*(table.c[name] for name in VALUE_COLUMNS))
            .where(
                table.c.job_id == job_id,
                table.c.size == size,
                table.c.block >= first // size,
                table.c.block <= last // size,
            )
            .order_by(table.c.block)
        ).all()
        return _columns(rows, n, interleaved=True)
    if size == 1:
        grouped = _grouped_points(job_id, origin, width, first, last)
        lasts: list[Any] = [_finite_sql(getattr(MetricRow, name)) for name in SERIES]
        joined = and_(MetricRow.job_id == job_id, MetricRow.step == grouped.c.last_step)
        rows = session.execute(select(grouped, *lasts).join(MetricRow, joined).order_by(grouped.c.bucket)).all()
    else:
        grouped = _grouped_blocks(job_id, size, origin, width, first, last)
        lasts = [getattr(MetricRollup, f"{name}_last") for name in SERIES]
        joined = and_(
            MetricRollup.job_id == job_id, MetricRollup.size == size, MetricRollup.last_step == grouped.c.last_step
        )
        rows = session.execute(select(grouped, *lasts).join(MetricRollup, joined).order_by(grouped.c.bucket)).all()
    return _columns([row[1:] for row in rows], n, interleaved=False)


def _named(columns: list[list[Any]]) -> dict[str, list[Any]]:
    return dict(zip(SERIES, columns, strict=True))


def _columns(rows: Sequence[Any], n: int, interleaved: bool) -> Buckets:
    """Rows of (count, first_step, last_step, then the series' values) as columns. `interleaved`: the
    values come as VALUE_COLUMNS orders them (min, max, last per series), else all mins, all maxes, all lasts."""
    columns = [list(c) for c in zip(*rows, strict=True)] or [[] for _ in range(3 + 3 * n)]
    count, first_step, last_step, values = columns[0], columns[1], columns[2], columns[3:]
    if interleaved:
        lows, highs, lasts = values[0::3], values[1::3], values[2::3]
    else:
        lows, highs, lasts = values[:n], values[n : 2 * n], values[2 * n :]
    return Buckets([int(c) for c in count], first_step, last_step, _named(lows), _named(highs), _named(lasts))


def _grouped_points(job_id: str, origin: int, width: int, first: int, last: int) -> Subquery:
    bucket = ((MetricRow.step - origin) // width).label("bucket")
    columns = [getattr(MetricRow, name) for name in SERIES]
    query = (
        select(
            bucket,
            func.count().label("count"),
            func.min(MetricRow.step).label("first_step"),
            func.max(MetricRow.step).label("last_step"),
            *(func.min(_finite_sql(c)).label(f"{c.key}_min") for c in columns),
            *(func.max(_finite_sql(c)).label(f"{c.key}_max") for c in columns),
        )
        .where(MetricRow.job_id == job_id, MetricRow.step >= first, MetricRow.step <= last)
        .group_by(bucket)
    )
    return query.subquery()


def _grouped_blocks(job_id: str, size: int, origin: int, width: int, first: int, last: int) -> Subquery:
    start = MetricRollup.block * literal(size, Integer)
    bucket = ((start - origin) // width).label("bucket")
    query = (
        select(
            bucket,
            func.sum(MetricRollup.count).label("count"),
            func.min(MetricRollup.first_step).label("first_step"),
            func.max(MetricRollup.last_step).label("last_step"),
            *(func.min(getattr(MetricRollup, f"{name}_min")).label(f"{name}_min") for name in SERIES),
            *(func.max(getattr(MetricRollup, f"{name}_max")).label(f"{name}_max") for name in SERIES),
        )
        .where(
            MetricRollup.job_id == job_id,
            MetricRollup.size == size,
            MetricRollup.block >= first // size,
            MetricRollup.block <= last // size,
        )
        .group_by(bucket)
    )
    return query.subquery()
