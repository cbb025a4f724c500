"""Every transition of a job, each one function and one transaction that records its events and then
announces them.

    submit ──► QUEUED ──claim──► RUNNING ──finish──► SUCCEEDED | FAILED | CANCELLED
                 ▲  │ owner at capacity      │  │
    dispatch ────┘  └──────► WAITING         │  └─hand back (shutdown) / reap (worker lost)──► QUEUED
                                             └─reap after max_attempts──► FAILED
    request_cancel: QUEUED or WAITING ──► CANCELLED at once; RUNNING is asked to stop (the worker finishes it).

docs/architecture.md draws the same. Repositories hold the queries; this module decides which state
follows which, appends the status event that says so, and publishes what it appended only once the
transaction has committed. API routes, workers and the reaper change a job only through here.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from service import experiments, fencing, idempotency, stacking, summary, views, webhooks
from service.artifacts import job_prefix
from service.db import Executor
from service.errors import Conflict, InvalidInput, NotFound
from service.jobs import resolve_spec
from service.models import CheckpointRow, Event, Experiment, ExperimentEvent, Job, utcnow
from service.principal import Admission, Principal
from service.queue import Outgoing, queue_for, stack_task, training_task
from service.records import (
    CheckpointOut,
    EventType,
    ExperimentFinished,
    JobError,
    Metric,
    RunCheckpoint,
    RunStatus,
    StatusEvent,
    finite_measures,
)
from service.repositories import (
    checkpoints as checkpoint_repo,
    events as event_repo,
    experiments as experiment_repo,
    idempotency as idempotency_repo,
    jobs as job_repo,
    metrics as metric_repo,
    owners as owner_repo,
    rollups as rollup_repo,
    rows,
)
from service.runtime import Runtime
from service.states import ErrorType, JobState, JobStatus, WebhookEvent
from wgan.config import MAX_NAME, TrainSpec

log = logging.getLogger(__name__)
ERROR_CHARS = 1000  # the checkpoints.evaluation_error column
# Every new job's first event: the same data each time, dumped once (each job's event gets a copy).
QUEUED_EVENT = StatusEvent.of(JobState.QUEUED).model_dump(mode="json")

# How a submission sends its tasks once its transaction has committed: at once by default (None:
# TaskQueue.send); the API passes TaskQueue.defer, so the broker send is not on the request's path. A
# process that dies before sending loses nothing: the reaper re-sends queued jobs whose task the broker lacks.
Defer = Callable[[Sequence[Outgoing]], object]


class Transition:
    """One transaction of the lifecycle: the events it appends are published after it commits, never
    before (a stream must not see what may still roll back) and never when it rolls back."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.events: list[Event | ExperimentEvent] = []
        self.outbox = webhooks.Outbox(session)

    def event(self, job: Job, kind: EventType, data: Any) -> None:
        self.events.append(event_repo.append(self.session, job.id, kind, data))
        self.tell_experiment(job, kind, data)
        self.tell_webhooks(job, kind, data)

    def tell_webhooks(self, job: Job, kind: EventType, data: Any) -> None:
        """The owner's webhooks hear of a job's start and end and of its checkpoints, each body a snapshot
        of the job (or checkpoint) as REST shows it at that moment."""
        if kind is EventType.STATUS:
            topic = _JOB_TOPICS.get(JobStatus(data["status"]))
            # Started once: taking a job up again after a lost worker is no new start.
            if topic is not None and (topic is not WebhookEvent.JOB_STARTED or job.attempts == 1):
                self.outbox.add(job.owner_id, topic, lambda: views.job_view(job).model_dump(mode="json"))
        elif kind is EventType.CHECKPOINT:
            self.outbox.add(
                job.owner_id,
                WebhookEvent.CHECKPOINT_CREATED,
                lambda: self._run_checkpoint(job, data).model_dump(mode="json"),
            )

    @staticmethod
    def _run_checkpoint(job: Job, data: Any) -> RunCheckpoint:
        return RunCheckpoint(
            job_id=job.id,
            checkpoint=CheckpointOut.model_validate(data),
            summary=summary.public(job.summary) if job.summary else None,
        )

    def tell_experiment(self, job: Job, kind: EventType, data: Any) -> None:
        """A run's status changes and checkpoints go to its experiment's stream as well (not its metrics:
        an experiment's page follows many runs on one connection), and its last run's end ends it."""
        if job.experiment_id is None or kind is EventType.METRICS:
            return
        if kind is EventType.STATUS:
            run = RunStatus(job_id=job.id, **data)
            self._experiment_event(job.experiment_id, EventType.RUN_STATUS, run.model_dump(mode="json"))
            if run.status.final:
                # Read under the experiment row's lock (taken by the append above): one run ends it, once.
                runs = experiment_repo.runs(self.session, job.experiment_id)
                if all(other.status.final for other in runs):
                    done = ExperimentFinished(counts=experiments.status_counts(runs)).model_dump(mode="json")
                    self._experiment_event(job.experiment_id, EventType.FINISHED, done)
                    experiment_id = job.experiment_id
                    self.outbox.add(
                        job.owner_id,
                        WebhookEvent.EXPERIMENT_FINISHED,
                        lambda: views.experiment_view(self.session.get_one(Experiment, experiment_id), runs).model_dump(
                            mode="json"
                        ),
                    )
        elif kind is EventType.CHECKPOINT:
            checkpoint = self._run_checkpoint(job, data)
            self._experiment_event(job.experiment_id, EventType.RUN_CHECKPOINT, checkpoint.model_dump(mode="json"))

    def _experiment_event(self, experiment_id: str, kind: EventType, data: Any) -> None:
        self.events.append(experiment_repo.append_event(self.session, experiment_id, kind, data))

    def move(self, job: Job, state: JobState, error: JobError | None = None) -> None:
        """Put the job in `state` and say so in its stream."""
        job.status = state
        job.error = None if error is None else error.model_dump(mode="json")
        if state.final:
            job.finished_at = utcnow()
            job.claimed_by = None
        self.event(job, EventType.STATUS, StatusEvent.of(state, error).model_dump(mode="json"))


_JOB_TOPICS = {
    JobStatus.RUNNING: WebhookEvent.JOB_STARTED,
    JobStatus.SUCCEEDED: WebhookEvent.JOB_SUCCEEDED,
    JobStatus.FAILED: WebhookEvent.JOB_FAILED,
    JobStatus.CANCELLED: WebhookEvent.JOB_CANCELLED,
}


@contextmanager
def _transition(rt: Runtime) -> Iterator[Transition]:
    """A transaction whose events are announced once it has committed."""
    with rt.db.transaction() as session:
        step = Transition(session)
        yield step
    rt.events.publish(step.events)
    # Committed, so a delivery whose task is not sent now (broker away) is still sent by the webhook sweep.
    for delivery_id in step.outbox.made:
        rt.tasks.send_delivery(delivery_id)


# --- from the API ------------------------------------------------------------------------------


def submit(
    rt: Runtime,
    who: Admission,
    spec: TrainSpec,
    idempotency_key: str | None = None,
    defer: Defer | None = None,
) -> Job:
    """A new job, QUEUED, its training task sent through `defer`; the caller is checked in the job's
    own transaction. With an Idempotency-Key, the same key and body return the job the first request
    made (service.idempotency), and the caller is checked before that lookup."""
    if idempotency_key is None:
        return _submit(rt, who, spec, None, defer)
    with rt.db.reads() as session:
        principal = who.admit(session)
    body = spec.model_dump(mode="json", exclude_unset=True)
    job, _ = idempotency.run_once(
        rt.db,
        principal.owner_id,
        idempotency_key,
        body,
        rt.settings.idempotency_ttl_seconds,
        lambda: _submit(rt, principal, spec, idempotency_key, defer),
        lambda job: job,
    )
    return job


def _submit(rt: Runtime, who: Admission, spec: TrainSpec, idempotency_key: str | None, defer: Defer | None) -> Job:
    # Statements alone, on a Core connection (Database.begin): nothing here loads or changes an ORM object.
    with rt.db.begin() as connection:
        principal = who.admit(connection)
        job, first = _new_job(connection, principal, resolve_spec(connection, principal, spec, rt.settings))
        if idempotency_key is not None:
            idempotency_repo.attach(connection, principal.owner_id, idempotency_key, job.id)
    # Its first event is announced with its task, in the broker's one round trip (TaskQueue.send).
    (defer or rt.tasks.send)([training_task(job.id, job.queue, rt.events.announcements([first]))])
    return job


def _new_job(
    executor: Executor,
    principal: Principal,
    resolved: TrainSpec,
    experiment: Experiment | None = None,
    overrides: dict[str, Any] | None = None,
) -> tuple[Job, Event]:
    """A QUEUED job for a resolved spec, and its first event (its task is sent once this commits)."""
    assert resolved.name is not None
    # One INSERT, not the ORM's flush (service.repositories.rows): nothing changes the job later in
    # this transaction.
    job = rows.insert(
        executor,
        Job,
        owner_id=principal.owner_id,
        name=resolved.name,
        spec=resolved.model_dump(mode="json"),
        queue=queue_for(resolved.device),
        dataset_id=resolved.dataset.id,
        total_steps=resolved.steps,
        status=JobState.QUEUED,
        enqueued_at=utcnow(),
        # A new job's first event is numbered here, sparing the row lock event_repo.append takes.
        event_seq=1,
        experiment_id=None if experiment is None else experiment.id,
        overrides=overrides,
    )
    return job, event_repo.add(executor, job.id, 1, EventType.STATUS, dict(QUEUED_EVENT))


def request_cancel(rt: Runtime, principal: Principal, job_id: str) -> Job:
    """A job not yet training is CANCELLED at once; a RUNNING one is asked to stop, and its worker
    checkpoints and finishes it within seconds."""
    with _transition(rt) as step:
        job = job_repo.get(step.session, job_id, principal, for_update=True)
        if job is None:
            raise NotFound(f"no job {job_id}")
        if job.status.final:
            raise Conflict(f"the job has already {job.status}")
        _cancel(step, job)
    return job


def _cancel(step: Transition, job: Job) -> None:
    if job.status is JobState.RUNNING:
        job.cancel_requested = True  # its worker checkpoints and finishes it CANCELLED
    else:
        step.move(job, JobState.CANCELLED)


def delete(rt: Runtime, principal: Principal, job_id: str) -> None:
    """Delete a job that is not training, its rows first and its artifacts once that has committed (a
    failed commit must not leave a job without its files)."""
    with rt.db.transaction() as session:
        job = job_repo.get(session, job_id, principal, for_update=True)
        if job is None:
            raise NotFound(f"no job {job_id}")
        if job.status is JobState.RUNNING:
            raise Conflict("the job is running: cancel it first, then delete it")
        job_repo.delete_rows(session, job)
    rt.store.delete_prefix(job_prefix(job_id))


# --- experiments: many runs as one --------------------------------------------------------------


@dataclass(frozen=True)
class PlannedRun:
    """A run of an experiment as the API validated it: what it changes of the base, and its spec."""

    overrides: dict[str, Any]
    spec: TrainSpec


def submit_experiment(
    rt: Runtime,
    principal: Principal,
    name: str,
    base: dict[str, Any],
    grid: dict[str, list[Any]] | None,
    runs: Sequence[PlannedRun],
    idempotency_key: str | None = None,
    body: Any = None,
    defer: Defer | None = None,
) -> Experiment:
    """An experiment and all its runs, each an ordinary QUEUED job, made together or not at all; their
    tasks are sent once that has committed. Idempotent with a key, as job submission is."""
    if idempotency_key is None:
        return _submit_experiment(rt, principal, name, base, grid, runs, None, defer)

    def load(first_run: Job) -> Experiment:
        with rt.db.reads() as session:
            found = experiment_repo.get(session, first_run.experiment_id or "", principal)
        if found is None:
            raise Conflict("this Idempotency-Key was used for a job, not an experiment")
        return found

    made, _ = idempotency.run_once(
        rt.db,
        principal.owner_id,
        idempotency_key,
        {"experiment": body},
        rt.settings.idempotency_ttl_seconds,
        lambda: _submit_experiment(rt, principal, name, base, grid, runs, idempotency_key, defer),
        load,
    )
    return made


def _submit_experiment(
    rt: Runtime,
    principal: Principal,
    name: str,
    base: dict[str, Any],
    grid: dict[str, list[Any]] | None,
    runs: Sequence[PlannedRun],
    idempotency_key: str | None,
    defer: Defer | None,
) -> Experiment:
    with _transition(rt) as step:
        experiment = Experiment(owner_id=principal.owner_id, name=name, base=base, grid=grid, event_seq=0)
        step.session.add(experiment)
        step.session.flush()
        jobs = []
        for index, run in enumerate(runs):
            try:
                resolved = resolve_spec(step.session, principal, run.spec, rt.settings)
            except InvalidInput as exc:
                # The run's own fields, named under it: ["body", "runs", 3, "model", "hidden_dim"].
                raise InvalidInput(
                    f"run {index} ({experiments.label(run.overrides)}): {exc.detail}",
                    [(("body", "runs", index, *error["loc"][1:]), str(error["msg"])) for error in exc.errors],
                ) from exc
            named = resolved.model_copy(update={"name": f"{name} · {experiments.label(run.overrides)}"[:MAX_NAME]})
            job, first = _new_job(step.session, principal, named, experiment, run.overrides)
            step.events.append(first)
            step.tell_experiment(job, EventType.STATUS, first.data)
            jobs.append(job)
        if idempotency_key is not None and jobs:
            idempotency_repo.attach(step.session, principal.owner_id, idempotency_key, jobs[0].id)
    # Runs that fit together train together, one task per stack (service.stacking).
    groups = [([job.id for job in group], group[0].queue) for group in stacking.plan(jobs, rt.settings)]
    (defer or rt.tasks.send)(
        [training_task(ids[0], queue) if len(ids) == 1 else stack_task(ids, queue) for ids, queue in groups]
    )
    return experiment


def cancel_experiment(rt: Runtime, principal: Principal, experiment_id: str) -> Experiment:
    """Every unfinished run cancelled (or, if training, asked to stop), in one transaction."""
    with _transition(rt) as step:
        if experiment_repo.get(step.session, experiment_id, principal) is None:
            raise NotFound(f"no experiment {experiment_id}")
        # Its runs locked before its row: a worker recording a run, or the reaper taking one back, holds the
        # run's row and then takes the experiment's to append to its stream. The other order deadlocked with
        # them, and it read the runs unlocked (one claimed since would have been cancelled as if queued).
        experiment_repo.lock_runs(step.session, experiment_id)
        experiment = experiment_repo.get(step.session, experiment_id, principal, for_update=True)
        if experiment is None:
            raise NotFound(f"no experiment {experiment_id}")
        unfinished = [job for job in experiment_repo.runs(step.session, experiment.id) if not job.status.final]
        if not unfinished:
            raise Conflict("every run of the experiment has already ended")
        for job in unfinished:
            _cancel(step, job)
    return experiment


def delete_experiment(rt: Runtime, principal: Principal, experiment_id: str) -> None:
    """The experiment and all its runs with their artifacts, once every run has ended."""
    with rt.db.transaction() as session:
        experiment = experiment_repo.get(session, experiment_id, principal, for_update=True)
        if experiment is None:
            raise NotFound(f"no experiment {experiment_id}")
        runs = experiment_repo.runs(session, experiment.id)
        if any(not job.status.final for job in runs):
            raise Conflict("runs of the experiment have not ended: cancel it first, then delete it")
        for job in runs:
            job_repo.delete_rows(session, job)
        experiment_repo.delete_rows(session, experiment)
    for job in runs:
        rt.store.delete_prefix(job_prefix(job.id))


# --- from the worker training it -----------------------------------------------------------------


class ClaimRefused(Exception):
    """The worker may not train this job now."""


class NotClaimable(ClaimRefused):
    """Finished, cancelled, gone, or trained by a live worker."""


class OwnerAtCapacity(ClaimRefused):
    """Its owner has max_running_per_owner jobs running: the job now waits (WAITING) for one to end."""


class ClaimLost(RuntimeError):
    """Another worker has taken the job over: this one must stop writing and training."""


@dataclass(frozen=True)
class Claimed:
    """What a worker needs of a job it has claimed."""

    job_id: str
    spec: TrainSpec
    attempt: int
    # The last step with a stored metric point: points up to it are not recorded again after a resume.
    recorded_step: int
    checkpoint_keys: list[str]  # newest first


def claim(rt: Runtime, job_id: str, worker_id: str) -> Claimed:
    """QUEUED (or RUNNING under a stale claim) → RUNNING for `worker_id`. Raises ClaimRefused, after
    committing what the refusal changed (a job whose owner is at capacity is then WAITING)."""
    settings = rt.settings
    refused: ClaimRefused | None = None
    with _transition(rt) as step:
        owner_id = job_repo.owner_of(step.session, job_id)
        if owner_id is None:
            raise NotClaimable(job_id)
        owner_repo.lock(step.session, owner_id)
        stale_before = utcnow() - timedelta(seconds=settings.claim_stale_seconds)
        if job_repo.take_claim(step.session, job_id, owner_id, worker_id, stale_before, settings.max_running_per_owner):
            job = step.session.get(Job, job_id, populate_existing=True)
            assert job is not None
            step.event(job, EventType.STATUS, StatusEvent.of(JobState.RUNNING).model_dump(mode="json"))
            claimed = Claimed(
                job_id=job.id,
                spec=TrainSpec.model_validate(job.spec),
                attempt=job.attempts,
                recorded_step=metric_repo.max_step(step.session, job.id),
                checkpoint_keys=[row.artifact_key for row in checkpoint_repo.newest_first(step.session, job.id)],
            )
        else:
            job = step.session.get(Job, job_id, populate_existing=True)
            if job is not None and job.status is JobState.QUEUED and not job.cancel_requested:
                # Not a visible change (the API shows both as queued), so no event: dispatch sends it later.
                job.status = JobState.WAITING
                job.enqueued_at = None
                refused = OwnerAtCapacity(job_id)
            else:
                refused = NotClaimable(job_id)
    if refused is not None:
        raise refused
    return claimed


def heartbeat(rt: Runtime, job_id: str, worker_id: str) -> tuple[bool, bool]:
    """Refresh the claim. Returns (still held, cancel requested)."""
    with rt.db.transaction() as session:
        return job_repo.heartbeat(session, job_id, worker_id)


@dataclass(frozen=True)
class NewCheckpoint:
    """A checkpoint a worker has written, with the evaluation at its step and the critic's estimate there."""

    step: int
    artifact_key: str
    sha256: str
    size_bytes: int
    measures: dict[str, float] | None = None
    evaluation_error: str | None = None
    wasserstein_estimate: float | None = None


def record(
    rt: Runtime,
    job_id: str,
    worker_id: str,
    metrics: Sequence[Metric],
    checkpoints: Sequence[NewCheckpoint],
    primary_measure: str,
) -> None:
    """Store metric points and checkpoints of a RUNNING job, its progress and summary, and their events,
    all or none. A step already stored (before a resume) is kept as it was. Raises ClaimLost."""
    with _transition(rt) as step:
        job = job_repo.holds_claim(step.session, job_id, worker_id)
        if job is None:
            raise ClaimLost(f"job {job_id} is no longer claimed by {worker_id}")
        rows = [{"job_id": job_id, **m.stored()} for m in metrics]
        new_steps = metric_repo.insert_ignoring_duplicates(step.session, rows)
        rollup_repo.add(step.session, job_id, [row for row in rows if row["step"] in new_steps])
        if metrics:
            step.event(job, EventType.METRICS, [m.model_dump(mode="json") for m in metrics])
            job.progress_step = metrics[-1].step
            job.latest_metrics = {k: v for k, v in metrics[-1].model_dump(mode="json").items() if _finite(v)}
        for new in checkpoints:
            row = _store_checkpoint(step.session, job_id, new)
            job.summary = summary.add_checkpoint(
                job.summary,
                primary_measure,
                step=row.step,
                checkpoint_id=row.id,
                estimate=new.wasserstein_estimate,
                measures=row.measures,
            )
            step.event(job, EventType.CHECKPOINT, CheckpointOut.model_validate(row).model_dump(mode="json"))
        job.heartbeat_at = utcnow()


def _finite(value: Any) -> bool:
    # JSON has no NaN (Postgres refuses it); a loss that came out undefined is left out of the summary row.
    return not isinstance(value, float) or math.isfinite(value)


def _store_checkpoint(session: Session, job_id: str, new: NewCheckpoint) -> CheckpointRow:
    # A step can be checkpointed again after a resume from an earlier, intact checkpoint (the later one
    # was damaged): the new file replaces the old index entry.
    checkpoint_repo.drop_step(session, job_id, new.step)
    row = CheckpointRow(
        job_id=job_id,
        step=new.step,
        artifact_key=new.artifact_key,
        sha256=new.sha256,
        size_bytes=new.size_bytes,
        measures=finite_measures(new.measures),
        evaluation_error=None if new.evaluation_error is None else new.evaluation_error[:ERROR_CHARS],
    )
    session.add(row)
    session.flush()
    return row


def finish(rt: Runtime, job_id: str, worker_id: str, state: JobState, error: JobError | None = None) -> None:
    """RUNNING → SUCCEEDED, FAILED or CANCELLED, by the worker holding the claim. Raises ClaimLost."""
    assert state.final, state
    with _transition(rt) as step:
        job = job_repo.holds_claim(step.session, job_id, worker_id)
        if job is None:
            raise ClaimLost(f"job {job_id} was taken over before it could finish")
        if state is JobState.SUCCEEDED:
            job.progress_step = job.total_steps
        step.move(job, state, error)


def hand_back(rt: Runtime, job_id: str, worker_id: str) -> None:
    """RUNNING → QUEUED, unclaimed and sent again (the worker is shutting down): a later worker resumes
    it from its last checkpoint. Nothing happens if the claim was already lost."""
    with _transition(rt) as step:
        job = job_repo.holds_claim(step.session, job_id, worker_id)
        if job is None:
            return
        _release(step, job)
        queue = job.queue
    rt.tasks.enqueue_training(job_id, queue)


def _release(step: Transition, job: Job) -> None:
    job.claimed_by = None
    job.heartbeat_at = None
    job.enqueued_at = utcnow()
    step.move(job, JobState.QUEUED)


# --- from every worker, now and then ------------------------------------------------------------


@dataclass
class Reaped:
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)
    dispatched: list[str] = field(default_factory=list)


def reap(rt: Runtime) -> Reaped:
    """Jobs whose worker vanished go back to QUEUED (FAILED after max_attempts, CANCELLED if their owner
    had asked them to stop); QUEUED jobs whose task message was lost are sent again; WAITING jobs whose
    owner has room are dispatched. Safe to run in many workers at once: each change re-checks its
    condition."""
    settings = rt.settings
    now = utcnow()
    result = Reaped()
    to_send: list[tuple[str, str]] = []
    with _transition(rt) as step:
        # Read without locking: a stale worker may be frozen holding its job's row lock, so its sessions
        # are ended before the job's row is written.
        stale_before = now - timedelta(seconds=settings.claim_stale_seconds)
        stale = job_repo.stale_running(step.session, stale_before)
        fencing.end_sessions(step.session, {job.claimed_by for job in stale if job.claimed_by is not None})
        # Now that no frozen worker holds their rows, locked and read again: another reaper (every worker
        # runs one) may have taken a job back since the read above, and taking it back twice would queue
        # it twice, with two status events.
        for job in job_repo.lock_still_stale(step.session, [job.id for job in stale], stale_before):
            if job.cancel_requested:
                # Its owner asked it to stop and its worker is gone: queued again, no worker would take it
                # (take_claim refuses a job asked to stop), and it would wait forever.
                step.move(job, JobState.CANCELLED)
                result.cancelled.append(job.id)
            elif job.attempts >= settings.max_attempts:
                message = f"the worker training this job stopped responding; {job.attempts} attempts made"
                step.move(job, JobState.FAILED, JobError(type=ErrorType.WORKER_LOST, message=message))
                result.failed.append(job.id)
            else:
                _release(step, job)
                to_send.append((job.id, job.queue))
                result.requeued.append(job.id)
    # A queued job that waited long may have lost its task (a broker restart without persistence): send
    # again what the broker no longer holds (TaskQueue.lost), and nothing that still waits in it.
    before = now - timedelta(seconds=settings.requeue_queued_seconds)
    with rt.db.reads() as session:
        candidates = [(job.id, job.queue) for job in job_repo.waiting_too_long(session, before)]
    lost = set(rt.tasks.lost(candidates))
    if lost:
        with rt.db.transaction() as session:
            for job in job_repo.waiting_too_long(session, before):
                if job.id in lost:
                    job.enqueued_at = now
                    to_send.append((job.id, job.queue))
                    result.resent.append(job.id)
    for job_id, queue in to_send:
        rt.tasks.enqueue_training(job_id, queue)
    result.dispatched = dispatch_waiting(rt)
    if result.requeued or result.failed or result.cancelled or result.resent:
        log.info(
            "reaper: requeued %s, failed %s, cancelled %s, resent %s",
            result.requeued,
            result.failed,
            result.cancelled,
            result.resent,
        )
    return result


def dispatch_waiting(rt: Runtime) -> list[str]:
    """WAITING → QUEUED, task sent, for the oldest waiting jobs whose owners now have room. Returns their
    ids. Never raises: it is a nudge, and the reaper calls it again on its next pass."""
    try:
        with rt.db.transaction() as session:
            jobs = job_repo.dispatchable(session, rt.settings.max_running_per_owner)
            now = utcnow()
            # Not a visible change either: the API showed it as queued all along. Read without a lock, so a
            # job cancelled since (or dispatched by another reaper) is left as it is, not brought back.
            chosen = [(job.id, job.queue) for job in jobs if job_repo.dispatch(session, job.id, now)]
    except Exception:
        log.exception("dispatching waiting jobs failed")
        return []
    for job_id, queue in chosen:
        rt.tasks.enqueue_training(job_id, queue)
    return [job_id for job_id, _ in chosen]
