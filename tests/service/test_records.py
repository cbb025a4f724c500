"""A metric page built straight from columns is the JSON the Metric model writes, point for point."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from service.models import MetricRow
from service.records import STORED_COLUMNS, Metric


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
