"""The service's resources as typed models, field for field as its OpenAPI document names them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict


class WireModel(BaseModel):
    """A resource as the server sends it. The contract lets the server add fields, so unknown ones are
    kept (as extra attributes) rather than refused; tests/client/test_models.py keeps the declared ones
    in step with /openapi.json."""

    model_config = ConfigDict(extra="allow", frozen=True)

    # The server's name for the schema, where it differs from the class's (set in the class's own body).
    component: ClassVar[str]

    @classmethod
    def schema_name(cls) -> str:
        return str(cls.__dict__.get("component", cls.__name__))


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


class Progress(WireModel):
    step: int
    total_steps: int


class LatestMetrics(WireModel):
    step: int
    critic_loss: float | None
    generator_loss: float | None
    wasserstein_estimate: float | None
    gradient_penalty: float | None = None
    seconds_per_step: float | None = None
    exact_w1: float | None = None
    measures: dict[str, float] | None = None


class SummaryAt(WireModel):
    step: int
    checkpoint_id: str
    value: float


class JobSummary(WireModel):
    primary: str
    checkpoints: int
    evaluated: int
    newest: SummaryAt | None
    best: SummaryAt | None
    spearman: float | None


class JobLinks(WireModel):
    self: str
    events: str
    metrics: str
    samples: str
    checkpoints: str


class JobError(WireModel):
    # A string, not an enum of today's kinds: a new kind of failure must not break reading the job.
    type: str
    message: str


class Job(WireModel):
    id: str
    name: str
    status: JobStatus
    spec: dict[str, Any]
    progress: Progress
    latest_metrics: LatestMetrics
    error: JobError | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cancel_requested: bool
    attempts: int
    summary: JobSummary | None = None
    experiment_id: str | None = None
    links: JobLinks


class JobPage(WireModel):
    items: list[Job]
    next_cursor: str | None


class Metric(WireModel):
    step: int
    critic_loss: float
    generator_loss: float
    wasserstein_estimate: float
    gradient_penalty: float | None
    seconds_per_step: float
    exact_w1: float | None = None
    modes_covered: float | None = None
    measures: dict[str, float] | None = None
    time: datetime


class MetricPage(WireModel):
    items: list[Metric]
    next_after_step: int | None


class Checkpoint(WireModel):
    component = "CheckpointOut"

    id: str
    step: int
    created_at: datetime
    size_bytes: int
    measures: dict[str, float] | None = None
    evaluation_error: str | None = None


class SeriesHistory(WireModel):
    min: list[float | None]
    max: list[float | None]
    last: list[float | None]


class HistorySeries(WireModel):
    critic_loss: SeriesHistory
    generator_loss: SeriesHistory
    wasserstein_estimate: SeriesHistory
    gradient_penalty: SeriesHistory
    seconds_per_step: SeriesHistory


class MeasuredHistory(WireModel):
    step: list[int]
    measures: list[dict[str, float]]


class MetricHistory(WireModel):
    """A job's metrics downsampled to buckets: per bucket its steps and point count, and per series the
    minimum, maximum and last value of its points; the measured points as columns."""

    points: int
    bucket_steps: int
    last_event_id: int
    first_step: list[int]
    last_step: list[int]
    count: list[int]
    series: HistorySeries
    measured: MeasuredHistory


class CheckpointList(WireModel):
    items: list[Checkpoint]


class StepCost(WireModel):
    component = "StepCostOut"

    generator_params: int
    critic_params: int
    flops_per_step: float
    updates_per_step: int


class Estimate(WireModel):
    component = "EstimateOut"

    seconds_per_step: float
    seconds: float
    basis: str
    jobs: int


class JobPreview(WireModel):
    spec: dict[str, Any]
    queue: str
    cost: StepCost
    estimate: Estimate


class Dataset(WireModel):
    component = "DatasetOut"

    id: str | None
    name: str
    kind: str
    shape: list[int]
    count: int | None
    builtin: bool
    description: str = ""
    created_at: datetime | None = None


class DatasetList(WireModel):
    items: list[Dataset]


class UploadedDataset(WireModel):
    id: str
    name: str
    shape: list[int]
    count: int
    kind: str


class ExperimentRun(WireModel):
    job_id: str
    name: str
    overrides: dict[str, Any]
    status: JobStatus
    progress: Progress
    final: float | None
    best: float | None
    links: JobLinks


class Spread(WireModel):
    mean: float | None
    sd: float | None
    n: int


class ExperimentGroup(WireModel):
    point: dict[str, Any]
    runs: list[str]
    final: Spread
    best: Spread


class ExperimentLinks(WireModel):
    self: str
    events: str
    cancel: str


class Experiment(WireModel):
    id: str
    name: str
    created_at: datetime
    base: dict[str, Any]
    grid: dict[str, list[Any]] | None
    primary: str | None
    counts: dict[str, int]
    progress: Progress
    finished: bool
    runs: list[ExperimentRun]
    groups: list[ExperimentGroup]
    links: ExperimentLinks


class ExperimentPage(WireModel):
    items: list[Experiment]
    next_cursor: str | None


class Problem(WireModel):
    """An RFC 9457 problem-details body, as every 4xx and 5xx answer carries."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: list[dict[str, Any]] | None = None


# What events carry. The stream's schemas are not in /openapi.json (an SSE body has none there); the
# drift test compares these with the server's own record models instead.
class StatusChange(WireModel):
    component = "StatusEvent"

    status: JobStatus
    error: JobError | None


class RunStatus(WireModel):
    job_id: str
    status: JobStatus
    error: JobError | None


class RunCheckpoint(WireModel):
    job_id: str
    checkpoint: Checkpoint
    summary: dict[str, Any] | None


class ExperimentFinished(WireModel):
    counts: dict[str, int]


D = TypeVar("D")


@dataclass(frozen=True)
class Event(Generic[D]):
    """One event of a stream: its id (what Last-Event-ID resumes after) and its data."""

    id: str
    data: D
    type: ClassVar[str]


@dataclass(frozen=True)
class MetricsEvent(Event[list[Metric]]):
    type: ClassVar[str] = "metrics"


@dataclass(frozen=True)
class StatusEvent(Event[StatusChange]):
    type: ClassVar[str] = "status"


@dataclass(frozen=True)
class CheckpointEvent(Event[Checkpoint]):
    type: ClassVar[str] = "checkpoint"


@dataclass(frozen=True)
class RunStatusEvent(Event[RunStatus]):
    type: ClassVar[str] = "run-status"


@dataclass(frozen=True)
class RunCheckpointEvent(Event[RunCheckpoint]):
    type: ClassVar[str] = "run-checkpoint"


@dataclass(frozen=True)
class FinishedEvent(Event[ExperimentFinished]):
    type: ClassVar[str] = "finished"


@dataclass(frozen=True)
class OtherEvent(Event[Any]):
    """An event of a kind this client does not know (the server may add kinds): its parsed JSON data."""

    kind: str = ""
    type: ClassVar[str] = ""


JobEvent = MetricsEvent | StatusEvent | CheckpointEvent | OtherEvent
ExperimentEvent = RunStatusEvent | RunCheckpointEvent | FinishedEvent | OtherEvent
