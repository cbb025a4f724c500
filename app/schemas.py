"""Request and response models of the HTTP contract (docs/API.md), as OpenAPI shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

# The records a job produces have one shape, service.records', on REST and in the event stream alike.
from service.records import CheckpointOut as CheckpointOut
from service.records import JobError as JobError
from service.records import Metric as Metric
from service.settings import Settings
from service.states import JobStatus as JobStatus
from wgan.config import MAX_NAME, NO_CONTROL_CHARACTERS, ModelSpec, TrainSpec


def bounded_spec(settings: Settings) -> type[TrainSpec]:
    """The job spec as this deployment accepts it: the engine's TrainSpec, subclassed with the limits
    the settings give (so OpenAPI shows them and a request over one is a 422 naming the field). Routes
    that take a spec are built with it (app.routes.jobs.routes)."""
    # Its own name: two components both titled ModelSpec (this and the engine's, which jobs show) make
    # client generators refuse the document as a duplicate model.
    bounded_model = create_model(
        "JobModelSpec",
        __base__=ModelSpec,
        latent_dim=(Annotated[int, Field(ge=1, le=settings.max_latent_dim)] | None, None),
        hidden_dim=(
            Annotated[int, Field(ge=1, le=settings.max_hidden_dim)] | None,
            Field(None, description="MLP layer width, or the DCGAN base channel width."),
        ),
        image_size=(
            Annotated[int, Field(ge=4, le=settings.max_image_size)] | None,
            Field(None, description="Image side; 16, 28, 32 or 64 for DCGAN."),
        ),
    )
    return create_model(
        "JobSpec",
        __base__=TrainSpec,
        __doc__="A training job's spec. Every field but `dataset` has a default; the job shows them all. "
        f"Its networks may have at most {settings.max_parameters:,} parameters together and a training step may "
        f"cost at most {settings.max_step_flops:.3g} FLOPs (POST /api/v1/jobs/preview counts both).",
        model=(bounded_model, Field(default_factory=bounded_model)),
        steps=(Annotated[int, Field(ge=1, le=settings.max_steps)], Field(2000, description="Generator updates.")),
        batch_size=(
            Annotated[int, Field(ge=1, le=settings.max_batch_size)] | None,
            Field(None, description="Examples per batch. Default: 256 for points, 64 for images."),
        ),
        checkpoint_every=(Annotated[int, Field(ge=1, le=settings.max_steps)], 500),
        log_every=(Annotated[int, Field(ge=1, le=settings.max_steps)], 10),
    )


class Progress(BaseModel):
    step: int
    total_steps: int


class LatestMetrics(BaseModel):
    step: int
    critic_loss: float | None
    generator_loss: float | None
    wasserstein_estimate: float | None
    gradient_penalty: float | None = None
    seconds_per_step: float | None = None
    exact_w1: float | None = None
    measures: dict[str, float] | None = Field(None, description="The newest evaluation's measures.")


class SummaryAt(BaseModel):
    step: int
    checkpoint_id: str
    value: float


class JobSummary(BaseModel):
    """The job's quality over its checkpoints."""

    primary: str = Field(description="The measure that ranks checkpoints (lower is better): 'exact_w1' or 'frechet'.")
    checkpoints: int
    evaluated: int = Field(description="Checkpoints whose evaluation gave the primary measure.")
    newest: SummaryAt | None
    best: SummaryAt | None = Field(description="Sample from it with ?checkpoint=best.")
    spearman: float | None = Field(
        description="Rank correlation of the critic's Wasserstein estimate with the primary measure over the "
        "checkpoints (the WGAN paper's claim: near 1 when the estimate tracks quality); null below three."
    )


class JobLinks(BaseModel):
    self: str
    events: str
    metrics: str
    samples: str
    checkpoints: str


class Job(BaseModel):
    id: str
    name: str
    status: JobStatus
    spec: TrainSpec = Field(description="The spec with every default filled in.")
    progress: Progress
    latest_metrics: LatestMetrics
    error: JobError | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cancel_requested: bool = Field(description="A cancel was asked for and the worker has not stopped yet.")
    attempts: int = Field(description="How many times a worker has taken the job up (more after a lost worker).")
    summary: JobSummary | None = Field(None, description="Null until the first checkpoint.")
    experiment_id: str | None = Field(None, description="The experiment this job is a run of, if any.")
    links: JobLinks


class StepCostOut(BaseModel):
    generator_params: int
    critic_params: int
    flops_per_step: float = Field(
        description="Floating-point operations of one generator step with its n_critic critic steps, counted "
        "on the meta device (matmuls and convolutions; a backward pass counted as two forwards)."
    )
    updates_per_step: int = Field(description="Optimizer updates in a step: n_critic critic updates and one.")


class EstimateOut(BaseModel):
    seconds_per_step: float
    seconds: float = Field(description="Training time for the spec's steps, checkpoints and evaluation aside.")
    basis: Literal["measured", "calibrated", "assumed"] = Field(
        description="'measured': the median of recent jobs of this cost on the same queue; 'calibrated': the "
        "assumed speed corrected by how recent jobs of other costs ran; 'assumed': no job has trained on the "
        "queue yet (WGAN_ESTIMATE_UPDATE_SECONDS, WGAN_ESTIMATE_FLOPS_PER_SECOND)."
    )
    jobs: int = Field(description="How many measured jobs the estimate rests on.")


class JobPreview(BaseModel):
    spec: TrainSpec = Field(description="The spec as the job would show it, every default filled in.")
    queue: str
    cost: StepCostOut
    estimate: EstimateOut


class JobPage(BaseModel):
    items: list[Job]
    next_cursor: str | None


class MetricPage(BaseModel):
    items: list[Metric]
    next_after_step: int | None


class CheckpointList(BaseModel):
    items: list[CheckpointOut]


class SampleCheckpoint(BaseModel):
    id: str
    step: int


class SampleSet(BaseModel):
    checkpoint: SampleCheckpoint
    seed: int
    samples: list[Any] = Field(description="Base64 PNG per image, or [x, y] per 2-D point.")


class DatasetOut(BaseModel):
    id: str | None = Field(description="Set for uploads; use it as the spec's dataset.id.")
    name: str
    kind: Literal["points", "images"]
    shape: list[int]
    count: int | None = Field(description="Examples, or null for toys sampled fresh each batch.")
    builtin: bool
    description: str = ""
    created_at: datetime | None = None


class DatasetList(BaseModel):
    items: list[DatasetOut]


class UploadedDataset(BaseModel):
    id: str
    name: str
    shape: list[int]
    count: int
    kind: Literal["points", "images"]


class ExperimentCreate(BaseModel):
    """An experiment: a base job spec and either a grid of dotted-path overrides (every combination is a
    run) or a list of runs, each an override object. Each run is an ordinary job."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=MAX_NAME, pattern=NO_CONTROL_CHARACTERS)
    base: dict[str, Any] = Field(description="A job spec; the fields the grid or runs set may be left out.")
    grid: dict[str, list[Any]] | None = Field(
        None,
        description='Dotted paths into the spec and their values: {"loss.kind": ["vanilla", "wgan-gp"], '
        '"seed": [0, 1, 2]} makes six runs.',
        examples=[{"loss.kind": ["vanilla", "wgan-clip", "wgan-gp"], "seed": [0, 1, 2]}],
    )
    runs: list[dict[str, Any]] | None = Field(
        None, description='Instead of a grid: each run\'s overrides, e.g. [{"optimizer.lr": 0.001}, {"seed": 3}].'
    )


class ExperimentRun(BaseModel):
    job_id: str
    name: str
    overrides: dict[str, Any]
    status: JobStatus
    progress: Progress
    final: float | None = Field(description="The primary measure at the run's newest checkpoint (lower is better).")
    best: float | None = Field(description="The primary measure at its best checkpoint.")
    links: JobLinks


class Spread(BaseModel):
    mean: float | None
    sd: float | None = Field(description="Sample standard deviation over the seeds; null below two.")
    n: int = Field(description="Runs with a value.")


class ExperimentGroup(BaseModel):
    point: dict[str, Any] = Field(description="The overrides that define the group: every one but the seed.")
    runs: list[str] = Field(description="Its runs' job ids.")
    final: Spread
    best: Spread


class ExperimentLinks(BaseModel):
    self: str
    events: str
    cancel: str


class Experiment(BaseModel):
    id: str
    name: str
    created_at: datetime
    base: dict[str, Any]
    grid: dict[str, list[Any]] | None
    primary: str | None = Field(description="The measure final and best are in: 'exact_w1' or 'frechet'.")
    counts: dict[str, int] = Field(description="Runs by status.")
    progress: Progress = Field(description="Generator steps done over all runs, and their total.")
    finished: bool = Field(description="Every run has ended.")
    runs: list[ExperimentRun] = Field(description="Ordered by ?sort= (default: the grid's order).")
    groups: list[ExperimentGroup] = Field(description="Runs that differ only in seed, with mean ± sd over them.")
    links: ExperimentLinks


class ExperimentPage(BaseModel):
    items: list[Experiment]
    next_cursor: str | None


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: list[dict[str, Any]] | None = None


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    checks: dict[str, str]
