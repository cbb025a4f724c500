"""Request and response models of the HTTP contract (docs/API.md), as OpenAPI shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

# The records a job produces have one shape, service.records', on REST and in the event stream alike.
from service.history import MetricHistory as MetricHistory
from service.records import CheckpointOut as CheckpointOut, JobError as JobError, Metric as Metric
from service.settings import Settings
from service.states import DeliveryState, JobStatus as JobStatus, WebhookEvent

# The job and the experiment have one shape too, service.views', on REST and in webhooks alike.
from service.views import (
    Experiment as Experiment,
    ExperimentGroup as ExperimentGroup,
    ExperimentLinks as ExperimentLinks,
    ExperimentRun as ExperimentRun,
    Job as Job,
    JobLinks as JobLinks,
    JobSummary as JobSummary,
    LatestMetrics as LatestMetrics,
    Progress as Progress,
    Spread as Spread,
    SummaryAt as SummaryAt,
)
from service.webhooks import MAX_URL_CHARS
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


class ExperimentPage(BaseModel):
    items: list[Experiment]
    next_cursor: str | None


class WebhookCreate(BaseModel):
    """A receiver for some of the owner's events. Messages follow the Standard Webhooks specification:
    signed with the secret the response shows once, retried with backoff for about a day."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1,
        max_length=MAX_URL_CHARS,
        description="http(s) URL to POST to. It must resolve to public addresses (loopback, private, link-local "
        "and metadata addresses are refused unless the deployment allows them); redirects are not followed.",
        examples=["https://example.com/hooks/wgan"],
    )
    events: list[WebhookEvent] = Field(min_length=1, max_length=len(WebhookEvent), description="What to send.")
    description: str = Field("", max_length=MAX_NAME, pattern=NO_CONTROL_CHARACTERS)


class WebhookLinks(BaseModel):
    self: str
    deliveries: str


class Webhook(BaseModel):
    id: str
    url: str
    events: list[WebhookEvent]
    description: str
    created_at: datetime
    links: WebhookLinks


class WebhookCreated(Webhook):
    secret: str = Field(
        description="whsec_…: the key of every message's webhook-signature (Standard Webhooks). Shown only now."
    )


class WebhookList(BaseModel):
    items: list[Webhook]


class Delivery(BaseModel):
    id: str
    webhook_id: str
    message_id: str = Field(description="The webhook-id header: the same on every retry and redelivery.")
    event: WebhookEvent
    status: DeliveryState = Field(description="pending (first try or a retry to come), delivered (a 2xx) or failed.")
    attempts: int
    last_status_code: int | None = Field(description="The receiver's status code at the last attempt, if it answered.")
    last_error: str | None = Field(description="Why the last attempt failed, if it did.")
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None = Field(description="When it will be tried next (pending only).")
    created_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any] = Field(description='The body as sent: {"type", "timestamp", "data"}.')


class DeliveryPage(BaseModel):
    items: list[Delivery]
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
