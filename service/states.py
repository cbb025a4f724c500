"""The words of a job's life: its states, the errors that end it, and what a worker's turn with it came to.

Which state follows which, and the one function that makes each step, is service.lifecycle's;
docs/architecture.md draws it.
"""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    """A job's status as the API shows it."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


class JobState(StrEnum):
    """A job's state as the database keeps it: the API's status, with the queued jobs told apart.

    QUEUED has a training task in the broker; WAITING has none, held back while its owner already
    has `max_running_per_owner` jobs running, and is sent when one of them ends. Clients see both
    as "queued": to them the job waits either way.
    """

    QUEUED = "queued"
    WAITING = "waiting"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def status(self) -> JobStatus:
        return JobStatus.QUEUED if self is JobState.WAITING else JobStatus(self.value)

    @property
    def final(self) -> bool:
        return self.status.final

    @classmethod
    def showing(cls, status: JobStatus) -> list[JobState]:
        """The states the API shows as `status`."""
        return [state for state in cls if state.status is status]


class ErrorType(StrEnum):
    """Why a job failed, as its `error.type` says."""

    # The job's own: its spec, its data, or its training.
    DIVERGED = "diverged"
    BAD_DATA = "bad_data"
    BAD_SPEC = "bad_spec"
    DEVICE_UNAVAILABLE = "device_unavailable"
    # The service's: a bug, or infrastructure that stayed away.
    INTERNAL_ERROR = "internal_error"
    DATABASE_UNAVAILABLE = "database_unavailable"
    WORKER_LOST = "worker_lost"


class StopReason(StrEnum):
    """Why a trainer stopped before its last step."""

    CANCEL = "cancel"
    SHUTDOWN = "shutdown"
    LOST_CLAIM = "lost_claim"
    WRITES = "writes"


class RunOutcome(StrEnum):
    """What one worker's turn with a job came to (the task's result, for logs and tests)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # Handed back on shutdown: queued again, resumed from its last checkpoint by the next worker.
    REQUEUED = "requeued"
    # Another worker took the job over; this one stopped writing.
    LOST_CLAIM = "lost_claim"
    # Not even the outcome could be written: the reaper hands the job on once its claim goes stale.
    ABANDONED = "abandoned"
    STOPPED = "stopped"
    WAITING_FOR_CAPACITY = "waiting_for_capacity"
    NOT_CLAIMED = "not_claimed"


class WebhookEvent(StrEnum):
    """What a webhook can subscribe to; the body's `type` (service.webhooks)."""

    JOB_STARTED = "job.started"  # first taken up by a worker (a resume after a lost worker is no new start)
    JOB_SUCCEEDED = "job.succeeded"
    JOB_FAILED = "job.failed"
    JOB_CANCELLED = "job.cancelled"
    CHECKPOINT_CREATED = "checkpoint.created"
    EXPERIMENT_FINISHED = "experiment.finished"


class DeliveryState(StrEnum):
    """A webhook delivery: still to be sent (first try or a retry), received (a 2xx), or given up on."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
