"""The records a job produces, in the one shape each has on the wire: the worker builds them when it
records, the REST API returns them, and the event stream sends them, so the three cannot drift."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import RowMapping

from service.models import MetricRow
from service.states import FINAL_STATUSES, ErrorType, JobState, JobStatus
from wgan.trainer import MetricPoint

MEASURES_DOC = (
    "What the evaluation measured at this checkpoint step: exact_w1 (the exact Wasserstein-1 distance to a fixed "
    "real sample, in data space); on the Gaussian mixtures modes_covered (VEEGAN's and PacGAN's count), "
    "modes_well_covered (at least 20% of a mode's share), modes_total and high_quality (the share within 3σ of a "
    "centre); on digits and mnist classes_covered, class_kl and frechet (a classifier's)."
)


class EventType(StrEnum):
    """The kinds of event in a job's stream; each event's data is one of the records below."""

    STATUS = "status"  # a StatusEvent
    METRICS = "metrics"  # a list of Metric
    CHECKPOINT = "checkpoint"  # a CheckpointOut
    # An experiment's stream: its runs' changes, each naming its run, and its end.
    RUN_STATUS = "run-status"  # a RunStatus
    RUN_CHECKPOINT = "run-checkpoint"  # a RunCheckpoint
    FINISHED = "finished"  # an ExperimentFinished: every run has ended


class JobError(BaseModel):
    type: ErrorType
    message: str


class StatusEvent(BaseModel):
    status: JobStatus
    error: JobError | None

    @classmethod
    def of(cls, state: JobState, error: JobError | None = None) -> StatusEvent:
        return cls(status=state.status, error=error)


def is_final_status(data: Any) -> bool:
    """Whether a status event's data (as stored) ends the job's stream."""
    # The statuses are a StrEnum: the stored text matches them as it is.
    return isinstance(data, dict) and data.get("status") in FINAL_STATUSES


def _json_float(value: Any) -> Any:
    # As pydantic writes them: JSON has no NaN or infinity, so those go out as null.
    return value if not isinstance(value, float) or math.isfinite(value) else None


def finite_measures(measures: dict[str, float] | None) -> dict[str, float] | None:
    """JSON has no NaN: a measure that came out undefined is left out rather than stored as garbage."""
    kept = {name: value for name, value in (measures or {}).items() if math.isfinite(value)}
    return kept or None


# The figures a metric point has in every shape: the trainer's, its row's and this one.
_LOGGED = ("step", "critic_loss", "generator_loss", "wasserstein_estimate", "gradient_penalty", "seconds_per_step")
# A point's columns in its row (service.models.MetricRow), the job's id aside.
STORED_COLUMNS = (*_LOGGED, "measures", "time")


# No docstrings on the wire models: pydantic would put them into the OpenAPI document.
class Metric(BaseModel):  # one logged step of a job
    step: int
    critic_loss: float
    generator_loss: float
    wasserstein_estimate: float
    gradient_penalty: float | None
    seconds_per_step: float
    exact_w1: float | None = Field(None, description="Exact W1 to the real data at checkpoints.")
    modes_covered: float | None = None
    measures: dict[str, float] | None = Field(None, description=MEASURES_DOC)
    time: datetime

    @classmethod
    def of(cls, row: MetricRow) -> Metric:
        """A stored point, as REST reads it back."""
        return cls._with_headline({name: getattr(row, name) for name in _LOGGED}, row.measures, row.time)

    @classmethod
    def from_point(cls, point: MetricPoint, time: datetime) -> Metric:
        """The trainer's point as recorded at `time`, with the measures JSON can carry."""
        logged = {name: getattr(point, name) for name in _LOGGED}
        return cls._with_headline(logged, finite_measures(point.evaluation), time)

    @classmethod
    def _with_headline(cls, logged: dict[str, Any], measures: dict[str, Any] | None, time: datetime) -> Metric:
        # The two measures clients plotted before there were others stay at the top as well.
        found = measures or {}
        headline = {"exact_w1": found.get("exact_w1"), "modes_covered": found.get("modes_covered")}
        return cls(**logged, **headline, measures=measures, time=time)

    @staticmethod
    def json_of(row: Mapping[str, Any] | RowMapping) -> dict[str, Any]:
        """What `Metric.of(row).model_dump(mode="json")` gives, straight from the row's columns
        (STORED_COLUMNS): a page of thousands of points builds no model per point."""
        point: dict[str, Any] = {name: _json_float(row[name]) for name in _LOGGED}
        point["step"] = row["step"]
        measures = row["measures"]
        found = measures or {}
        point["exact_w1"] = found.get("exact_w1")
        point["modes_covered"] = found.get("modes_covered")
        point["measures"] = measures
        point["time"] = row["time"].isoformat().replace("+00:00", "Z")
        return point

    def stored(self) -> dict[str, Any]:
        """The columns of its row (service.models.MetricRow), the job's id aside."""
        return self.model_dump(exclude={"exact_w1", "modes_covered"})


class CheckpointOut(BaseModel):  # a checkpoint with its evaluation, read from its row (models.CheckpointRow)
    model_config = ConfigDict(from_attributes=True)

    id: str
    step: int
    created_at: datetime
    size_bytes: int
    measures: dict[str, float] | None = Field(None, description=MEASURES_DOC)
    evaluation_error: str | None = Field(None, description="Why this checkpoint's evaluation failed, if it did.")


class RunStatus(StatusEvent):  # a run of an experiment changed status
    job_id: str


class RunCheckpoint(BaseModel):  # a run of an experiment checkpointed: the checkpoint, and the run's summary now
    job_id: str
    checkpoint: CheckpointOut
    summary: dict[str, Any] | None


class ExperimentFinished(BaseModel):  # the experiment's last event: how its runs ended
    counts: dict[str, int]
