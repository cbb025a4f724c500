"""A metric page built without a model per point (by Postgres, or straight from the columns) is the JSON the
Metric model writes, point for point; a status event ends its stream when its status is final."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from service.models import MetricRow
from service.records import STORED_COLUMNS, Metric, StatusEvent, is_final_status
from service.repositories import metrics as metric_repo
from service.states import JobStatus
from tests.service.conftest import Stored


@pytest.mark.parametrize(
    "values",
    [
        {"critic_loss": 0.5, "gradient_penalty": 0.01, "measures": None},
        {"critic_loss": float("nan"), "gradient_penalty": None, "measures": {"exact_w1": 0.3, "frechet": 2.0}},
        {"critic_loss": float("inf"), "gradient_penalty": -float("inf"), "measures": {"modes_covered": 8.0}},
    ],
)
@pytest.mark.parametrize(
    "time", [datetime(2026, 12, 3, 7, 0, 0, tzinfo=UTC), datetime(2026, 12, 3, 7, 0, 0, 123, tzinfo=UTC)]
)
def test_json_of_a_row_is_what_the_model_writes(values: dict, time: datetime) -> None:
    row = MetricRow(
        job_id="j",
        step=40,
        generator_loss=-0.25,
        wasserstein_estimate=1e-9,
        seconds_per_step=0.002,
        time=time,
        **values,
    )
    columns = {name: getattr(row, name) for name in STORED_COLUMNS}
    fast = json.dumps(Metric.json_of(columns), allow_nan=False)
    assert json.loads(fast) == json.loads(Metric.of(row).model_dump_json())
    assert list(json.loads(fast)) == list(Metric.model_fields)  # the same keys, in the same order


def test_a_page_is_what_the_model_writes_on_every_database(job: Stored) -> None:
    from sqlalchemy import select

    now = datetime(2026, 12, 3, 7, 0, 0, 250, tzinfo=UTC)
    points = [
        {
            "step": step,
            "critic_loss": 0.1 * step,
            "generator_loss": -1.0 / step,
            "wasserstein_estimate": 1e-300 * step,
            "gradient_penalty": None if step % 3 else 0.5,
            "seconds_per_step": 0.002,
            "measures": {"exact_w1": 0.25, "modes_covered": 7.0} if step % 4 == 0 else None,
            "time": now + timedelta(seconds=step),
        }
        for step in range(1, 12)
    ]
    points[4]["gradient_penalty"] = float("inf")  # JSON has none: null, as pydantic writes it
    with job.db.transaction() as session:
        metric_repo.insert_ignoring_duplicates(session, [{"job_id": job.job_id, **p} for p in points])
    pages, after = [], 0
    with job.db.reads() as session:
        while True:
            items, after = metric_repo.page_json(session, job.job_id, after, 4)
            pages.append(json.loads(items))
            if after is None:
                break
        rows = session.scalars(select(MetricRow).where(MetricRow.job_id == job.job_id).order_by(MetricRow.step)).all()
        expected = [json.loads(Metric.of(row).model_dump_json()) for row in rows]
    assert [len(page) for page in pages] == [4, 4, 3]  # and the last page says nothing follows
    got = [item for page in pages for item in page]
    for item, want in zip(got, expected, strict=True):
        # Equal as values: Postgres writes every time with its microseconds, pydantic drops zero ones.
        assert datetime.fromisoformat(item.pop("time")) == datetime.fromisoformat(want.pop("time"))
        assert list(item) == list(want) and item == want


def test_a_status_event_ends_its_stream_exactly_when_its_status_is_final() -> None:
    for status in JobStatus:
        stored = StatusEvent(status=status, error=None).model_dump(mode="json")  # as the events table holds it
        assert is_final_status(stored) is status.final
    assert not is_final_status({"status": "no such status"}) and not is_final_status(None)
