"""Database tables as typed SQLAlchemy models; the schema itself is made only by migrations/."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from service.states import DeliveryState, JobState

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_id() -> str:
    return str(uuid.uuid4())


def is_id(value: str) -> bool:
    """Whether `value` could be an id this service made. Anything else names nothing, and is never sent
    to the database (where a NUL byte, say, is an error rather than a miss)."""
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, also on SQLite (which stores no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
    }


class Owner(Base):
    __tablename__ = "owners"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)

    owner: Mapped[Owner] = relationship(lazy="raise")


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    shape: Mapped[list[Any]] = mapped_column()
    count: Mapped[int] = mapped_column(Integer)
    artifact_key: Mapped[str] = mapped_column(String(300))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Experiment(Base):
    """A grid (or list) of runs compared as one: each run is an ordinary job with `experiment_id` set."""

    __tablename__ = "experiments"
    __table_args__ = (Index("ix_experiments_owner_created", "owner_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    # As submitted: the base spec, and the grid's axes (dotted path → values) or None for a list of runs.
    base: Mapped[dict[str, Any]] = mapped_column()
    grid: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    # The last number of its own event log (experiment_events), the one stream its dashboard follows.
    event_seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def experiment_stream(experiment_id: str) -> str:
    """Where an experiment's events are announced (service.events): apart from any job's."""
    return f"experiment-{experiment_id}"


class EventLog:
    """The columns of an event log: numbered 1, 2, 3… per owner of the log, one typed record each."""

    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    data: Mapped[Any] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ExperimentEvent(EventLog, Base):
    """An experiment's event log: its runs' status changes and checkpoints, then its end."""

    __tablename__ = "experiment_events"

    experiment_id: Mapped[str] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True)

    @property
    def stream(self) -> str:
        return experiment_stream(self.experiment_id)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_owner_created", "owner_id", "created_at", "id"),
        Index("ix_jobs_status", "status"),
        Index("ix_jobs_experiment_id", "experiment_id"),
        # The preview's speed estimate reads the newest jobs of a queue (repositories.jobs.recent_speeds).
        Index("ix_jobs_queue_created", "queue", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    # Stored as the value's text (a VARCHAR, no database enum type), so a new state needs no DDL.
    status: Mapped[JobState] = mapped_column(
        Enum(JobState, native_enum=False, length=16, values_callable=lambda states: [s.value for s in states]),
        default=JobState.QUEUED,
    )
    spec: Mapped[dict[str, Any]] = mapped_column()
    queue: Mapped[str] = mapped_column(String(32))
    dataset_id: Mapped[str | None] = mapped_column(ForeignKey("datasets.id", ondelete="RESTRICT"), default=None)
    progress_step: Mapped[int] = mapped_column(Integer, default=0)
    total_steps: Mapped[int] = mapped_column(Integer)
    latest_metrics: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    error: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # The claim: which worker trains this job, and when it last proved it is alive.
    claimed_by: Mapped[str | None] = mapped_column(String(200), default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When its training task was last sent (queued jobs): the reaper re-sends one that waited too long.
    enqueued_at: Mapped[datetime | None] = mapped_column(default=None)
    # The last event number handed out; events are numbered 1, 2, 3… per job.
    event_seq: Mapped[int] = mapped_column(Integer, default=0)
    # The measures over the job's checkpoints so far (service.summary), kept up to date by its recorder.
    summary: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    # A run of an experiment: which one, and what it changed of the experiment's base spec. No foreign
    # key: SQLite could only add one by recreating `jobs` (see migration 0002); the lifecycle deletes an
    # experiment's runs with it.
    experiment_id: Mapped[str | None] = mapped_column(String(36), default=None)
    overrides: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class MetricRow(Base):
    __tablename__ = "metrics"
    __table_args__ = (
        # The few points that carry measures (checkpoint steps), for the downsampled history (service.history).
        Index(
            "ix_metrics_measured",
            "job_id",
            "step",
            postgresql_where=text("measures IS NOT NULL"),
            sqlite_where=text("measures IS NOT NULL"),
        ),
    )

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    critic_loss: Mapped[float] = mapped_column(Float)
    generator_loss: Mapped[float] = mapped_column(Float)
    wasserstein_estimate: Mapped[float] = mapped_column(Float)
    gradient_penalty: Mapped[float | None] = mapped_column(Float, default=None)
    seconds_per_step: Mapped[float] = mapped_column(Float)
    # What the evaluation measured at this step (checkpoint steps only): exact_w1, modes_covered, …
    # SQL NULL where there are none (not JSON null), so ix_metrics_measured leaves those rows out.
    measures: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), default=None)
    time: Mapped[datetime] = mapped_column(default=utcnow)


class MetricRollup(Base):
    """One aligned block of a job's metric steps summarised: how many points it holds, its first and last
    step, and per logged series the smallest and largest finite value and the value at its last step.

    Kept at a few block sizes (service.repositories.rollups) as points are stored, so a downsampled history
    of any length reads a few thousand rows, never every point.
    """

    __tablename__ = "metric_rollups"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    size: Mapped[int] = mapped_column(Integer, primary_key=True)  # steps per block
    block: Mapped[int] = mapped_column(Integer, primary_key=True)  # its first step is block * size
    count: Mapped[int] = mapped_column(Integer)
    first_step: Mapped[int] = mapped_column(Integer)
    last_step: Mapped[int] = mapped_column(Integer)
    critic_loss_min: Mapped[float | None] = mapped_column(Float, default=None)
    critic_loss_max: Mapped[float | None] = mapped_column(Float, default=None)
    critic_loss_last: Mapped[float | None] = mapped_column(Float, default=None)
    generator_loss_min: Mapped[float | None] = mapped_column(Float, default=None)
    generator_loss_max: Mapped[float | None] = mapped_column(Float, default=None)
    generator_loss_last: Mapped[float | None] = mapped_column(Float, default=None)
    wasserstein_estimate_min: Mapped[float | None] = mapped_column(Float, default=None)
    wasserstein_estimate_max: Mapped[float | None] = mapped_column(Float, default=None)
    wasserstein_estimate_last: Mapped[float | None] = mapped_column(Float, default=None)
    gradient_penalty_min: Mapped[float | None] = mapped_column(Float, default=None)
    gradient_penalty_max: Mapped[float | None] = mapped_column(Float, default=None)
    gradient_penalty_last: Mapped[float | None] = mapped_column(Float, default=None)
    seconds_per_step_min: Mapped[float | None] = mapped_column(Float, default=None)
    seconds_per_step_max: Mapped[float | None] = mapped_column(Float, default=None)
    seconds_per_step_last: Mapped[float | None] = mapped_column(Float, default=None)


class CheckpointRow(Base):
    __tablename__ = "checkpoints"
    __table_args__ = (UniqueConstraint("job_id", "step"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    artifact_key: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    # The generator's measures at this checkpoint, or why its evaluation failed.
    measures: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    evaluation_error: Mapped[str | None] = mapped_column(String(1000), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Event(EventLog, Base):
    """The job's event log, the one source of the SSE stream: live and replayed alike."""

    __tablename__ = "events"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)

    @property
    def stream(self) -> str:
        """Where it is announced (service.events): the job's id, the key its SSE streams follow."""
        return self.job_id


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_keys"

    owner_id: Mapped[str] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Webhook(Base):
    """A receiver an owner registered: where to POST which events, and the secret that signs them."""

    __tablename__ = "webhooks"
    __table_args__ = (Index("ix_webhooks_owner_created", "owner_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[Any]] = mapped_column()
    # Kept as given (whsec_…): signing needs the secret itself, so unlike an API key it cannot be hashed.
    secret: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    """One message to one receiver and its attempts. `message_id` is the webhook-id header: the same on
    every retry and on a redelivery, so a receiver can drop what it has already handled."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_webhook_created", "webhook_id", "created_at", "id"),
        # The sweep's query: pending deliveries by when they are due.
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    message_id: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(32))
    # The body exactly as sent (a snapshot when the event happened), the same bytes on every attempt.
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[DeliveryState] = mapped_column(
        Enum(DeliveryState, native_enum=False, length=16, values_callable=lambda states: [s.value for s in states]),
        default=DeliveryState.PENDING,
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    # Held while an attempt is under way, so only one sender makes it; an expired lease means it died.
    leased_until: Mapped[datetime | None] = mapped_column(default=None)
    last_status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)
    last_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
