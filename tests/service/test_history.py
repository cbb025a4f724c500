"""The downsampled history keeps what a chart must not lose: every bucket's minimum, maximum and last
point exactly, buckets that cover every point once, and no more buckets than asked, on Postgres and SQLite."""

from __future__ import annotations

import bisect
import math
import random
from typing import Any

import pytest

from service import history, lifecycle
from service.auth import authenticate
from service.principal import Principal
from service.records import Metric
from service.repositories import metrics as metric_repo, rollups
from service.runtime import Runtime
from tests.conftest import make_key
from tests.service.conftest import PARKED, Stored
from tests.support.service import runtime
from wgan.trainer import MetricPoint

SERIES = rollups.SERIES


def _points(steps: list[int], seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    points = []
    for step in steps:
        spike = 1000.0 if rng.random() < 0.002 else 1.0  # rare spikes: the extremes a mean would hide
        points.append(
            {
                "step": step,
                "critic_loss": rng.gauss(0, 1) * spike,
                "generator_loss": rng.gauss(0, 1),
                "wasserstein_estimate": rng.random(),
                "gradient_penalty": None if step % 7 == 0 else rng.random(),
                "seconds_per_step": rng.uniform(0.01, 0.02),
                "measures": {"exact_w1": rng.random()} if step % 500 == 0 else None,
            }
        )
    return points


def _store(stored: Stored, points: list[dict[str, Any]], batch: int = 1000) -> None:
    # As the recorder stores them: batches of points, each folded into the rollups in its transaction.
    for start in range(0, len(points), batch):
        rows = [{"job_id": stored.job_id, **p} for p in points[start : start + batch]]
        with stored.db.transaction() as session:
            new = metric_repo.insert_ignoring_duplicates(session, rows)
            rollups.add(session, stored.job_id, [row for row in rows if row["step"] in new])


def _check(got: history.MetricHistory, points: list[dict[str, Any]], buckets: int) -> None:
    """Each bucket against the points themselves: its count, its extremes, its last value."""
    assert 0 < len(got.count) <= buckets
    assert got.points == len(points) == sum(got.count)
    by_step = {p["step"]: p for p in points}
    steps = [p["step"] for p in points]
    covered = 0
    expected: list[int] = []
    for i, (first, last) in enumerate(zip(got.first_step, got.last_step, strict=True)):
        inside = points[bisect.bisect_left(steps, first) : bisect.bisect_right(steps, last)]
        assert len(inside) == got.count[i] and inside[0]["step"] == first and inside[-1]["step"] == last
        covered += len(inside)
        for name in SERIES:
            finite = [p[name] for p in inside if p[name] is not None and math.isfinite(p[name])]
            column = getattr(got.series, name)
            assert column.min[i] == (min(finite) if finite else None), (name, i)
            assert column.max[i] == (max(finite) if finite else None), (name, i)
            assert column.last[i] == by_step[last][name], (name, i)
        measured = [p["step"] for p in inside if p["measures"]]
        expected.extend(measured[-1:])  # the bucket's last measured point
    assert covered == len(points)  # buckets are disjoint and in step order
    assert got.first_step == sorted(got.first_step)
    assert got.measured.step == expected
    assert got.measured.measures == [by_step[step]["measures"] for step in expected]


@pytest.mark.parametrize(
    ("steps", "buckets"),
    [
        (list(range(200, 1_000_001, 200)), 2000),  # 5,000 points of log_every 200: blocks of 512 steps
        (list(range(1, 3001)), 2000),  # fewer steps than 16 per bucket: the points themselves
        (list(range(10, 90_001, 10)), 7),  # few, wide buckets: blocks of 4096
    ],
)
def test_every_bucket_keeps_its_extremes_and_its_last_point(job: Stored, steps: list[int], buckets: int) -> None:
    points = _points(steps, seed=len(steps))
    _store(job, points)
    with job.db.reads() as session:
        got = history.read(session, job.job_id, buckets, last_event_id=3)
    _check(got, points, buckets)
    assert got.bucket_steps % history.plan(steps[0], steps[-1], buckets).size == 0
    assert got.last_event_id == 3
    # The chart's line ends on the job's newest point, and a spike anywhere survives downsampling.
    assert got.series.critic_loss.last[-1] == points[-1]["critic_loss"]
    assert max(v for v in got.series.critic_loss.max if v is not None) == max(p["critic_loss"] for p in points)
    if got.bucket_steps <= 500:  # a checkpoint every 500 steps: every one has a bucket of its own
        assert got.measured.step == [p["step"] for p in points if p["measures"]]


def test_a_range_reads_only_its_blocks_and_says_which_steps_it_holds(job: Stored) -> None:
    points = _points(list(range(20, 100_001, 20)), seed=2)
    _store(job, points, batch=5000)
    with job.db.reads() as session:
        got = history.read(session, job.job_id, 100, last_event_id=0, from_step=40_000, to_step=41_000)
    inside = [p for p in points if got.first_step[0] <= p["step"] <= got.last_step[-1]]
    _check(got, inside, 100)
    # A bound widens at most to the block it falls in, never past a bucket.
    assert 40_000 - got.bucket_steps < got.first_step[0] <= 40_000
    assert 41_000 <= got.last_step[-1] < 41_000 + got.bucket_steps


def test_many_checkpoints_in_one_bucket_keep_the_last(job: Stored) -> None:
    points = _points(list(range(1, 5_001)), seed=3)
    for p in points:
        p["measures"] = {"exact_w1": p["step"] / 1000} if p["step"] % 10 == 0 else None
    _store(job, points, batch=2000)
    with job.db.reads() as session:
        got = history.read(session, job.job_id, 50, last_event_id=0)
    _check(got, points, 50)  # each bucket's last measured point, and no other
    assert len(got.measured.step) == len(got.count) < len([p for p in points if p["measures"]])


def test_an_empty_job_has_an_empty_history(job: Stored) -> None:
    with job.db.reads() as session:
        got = history.read(session, job.job_id, 2000, last_event_id=1)
    assert (got.points, got.count, got.measured.step, got.last_event_id) == (0, [], [], 1)


def test_plan_never_exceeds_the_buckets_asked_for() -> None:
    rng = random.Random(0)
    for _ in range(2000):
        first = rng.randint(0, 10**6)
        last = first + rng.randint(0, 10**6)
        buckets = rng.randint(1, 5000)
        chosen = history.plan(first, last, buckets)
        assert chosen.origin <= first and chosen.origin % chosen.size == 0 and chosen.width % chosen.size == 0
        assert (last - chosen.origin) // chosen.width + 1 <= buckets


def _owner(rt: Runtime) -> Principal:
    with rt.db.reads() as session:
        owner = authenticate(session, make_key())
    assert owner is not None
    return owner


def test_a_step_recorded_again_after_a_resume_is_counted_once(database: str) -> None:
    rt = runtime()
    job = lifecycle.submit(rt, _owner(rt), PARKED)
    lifecycle.claim(rt, job.id, "first")

    def metric(step: int, loss: float) -> Metric:
        from service.models import utcnow

        return Metric.from_point(MetricPoint(step, loss, 0.0, 0.0, None, 0.01, {}), utcnow())

    lifecycle.record(rt, job.id, "first", [metric(s, float(s)) for s in range(1, 21)], [], "exact_w1")
    # The resumed run logs steps 11–20 again, with other values: the stored points, and counts, stand.
    lifecycle.record(rt, job.id, "first", [metric(s, -float(s)) for s in range(11, 31)], [], "exact_w1")
    with rt.db.reads() as session:
        got = history.read(session, job.id, 1, last_event_id=0)
    assert got.count == [30]
    assert (got.series.critic_loss.min, got.series.critic_loss.max) == ([-30.0], [20.0])
    assert got.series.critic_loss.last == [-30.0]


def test_the_generated_million_point_jobs_have_the_rollups_the_recorder_keeps(database: str) -> None:
    """tests/support/million.py builds rollups in SQL for speed: they are the ones fold() makes."""
    from sqlalchemy import select

    from service.db import Database
    from service.models import MetricRollup, MetricRow
    from tests.support import million

    rt = runtime()
    job = lifecycle.submit(rt, _owner(rt), PARKED)
    million.fill(rt.settings.database_url, job.id, 3000)
    db = Database(rt.settings.database_url)
    with db.reads() as session:
        table = MetricRow.__table__
        points = session.execute(select(table).where(table.c.job_id == job.id)).mappings().all()
        stored = session.execute(select(MetricRollup.__table__).where(MetricRollup.job_id == job.id)).mappings().all()
    db.dispose()
    folded = {key: block.columns(job.id, key) for key, block in rollups.fold(points).items()}
    got = {(row["size"], row["block"]): dict(row) for row in stored}
    assert got.keys() == folded.keys()
    for key, row in got.items():
        want = folded[key]
        assert row.pop("job_id") == want.pop("job_id")
        assert row == pytest.approx(want, rel=1e-12), key
    assert million.newest(rt.settings.database_url, 3000)["critic_loss"] == points[-1]["critic_loss"]
