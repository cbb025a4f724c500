"""Running one claimed job: build the engine from its stored spec, resume, train, record, finish."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import torch

from service.artifacts import ArtifactStore, checkpoint_prefix, dataset_key
from service.db import transaction
from service.models import utcnow
from service.queue import enqueue_training
from service.repositories import checkpoints as checkpoint_repo
from service.repositories import jobs as job_repo
from service.repositories import metrics as metric_repo
from service.settings import Settings
from service.summary import primary_measure
from wgan.assemble import Run, assemble
from wgan.checkpoint import Checkpoint, CheckpointError, load_checkpoint, read_manifest, save_checkpoint
from wgan.config import SpecError, TrainSpec
from wgan.cost import step_cost
from wgan.data.files import DataError
from wgan.devices import DeviceUnavailable
from wgan.trainer import Hooks, MetricPoint, TrainingDiverged
from worker import faults
from worker.dispatch import dispatch_waiting
from worker.monitor import Heartbeat, StopSignal
from worker.recording import CheckpointRecord, ClaimLost, Recorder, WritesFailed, with_retry

log = logging.getLogger(__name__)

# Failures that are the job's own (its spec or data), reported to its owner by type.
JOB_ERRORS: dict[type[BaseException], str] = {
    TrainingDiverged: "diverged",
    DataError: "bad_data",
    SpecError: "bad_spec",
    DeviceUnavailable: "device_unavailable",
}


@dataclass
class Claimed:
    job_id: str
    spec: TrainSpec
    attempt: int
    recorded_step: int
    checkpoint_keys: list[str]


def _claim(job_id: str, worker_id: str, settings: Settings) -> Claimed | job_repo.ClaimRefused:
    with transaction() as session:
        stale_before = utcnow() - timedelta(seconds=settings.claim_stale_seconds)
        job = job_repo.claim(session, job_id, worker_id, stale_before, settings.max_running_per_owner)
        if isinstance(job, job_repo.ClaimRefused):
            return job
        return Claimed(
            job_id=job.id,
            spec=TrainSpec.model_validate(job.spec),
            attempt=job.attempts,
            recorded_step=metric_repo.max_step(session, job.id),
            checkpoint_keys=[row.artifact_key for row in checkpoint_repo.newest_first(session, job.id)],
        )


def _load_uploaded(spec: TrainSpec, store: ArtifactStore) -> np.ndarray | None:
    if spec.dataset.id is None:
        return None
    try:
        with np.load(store.fetch(dataset_key(spec.dataset.id)), allow_pickle=False) as archive:
            return np.asarray(archive["x"])
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"the uploaded data set {spec.dataset.id} cannot be read: {exc}") from exc


def _resume(run: Run, claimed: Claimed, store: ArtifactStore) -> None:
    """Continue from the newest checkpoint that verifies; damaged ones are passed over."""
    for key in claimed.checkpoint_keys:
        try:
            run.trainer.restore(load_checkpoint(store.fetch_checkpoint(key)))
        except (CheckpointError, FileNotFoundError) as exc:
            log.warning("skipping checkpoint %s: %s", key, exc, extra={"job_id": claimed.job_id})
            continue
        log.info("resumed from step %d", run.trainer.step, extra={"job_id": claimed.job_id})
        return


def _finish(job_id: str, worker_id: str, status: str, error: dict[str, Any] | None, budget: float) -> None:
    def write() -> None:
        with transaction() as session:
            job = job_repo.holds_claim(session, job_id, worker_id)
            if job is None:
                raise ClaimLost(f"job {job_id} was taken over before it could finish")
            if status == "succeeded":
                job.progress_step = job.total_steps
            job_repo.set_status(session, job, status, error)

    with_retry(write, budget, f"the final status {status}")


def _requeue(job_id: str, worker_id: str, budget: float) -> None:
    """Hand the job back (worker shutting down): it waits queued and resumes from its checkpoint."""
    queue_name: list[str] = []

    def write() -> None:
        with transaction() as session:
            job = job_repo.holds_claim(session, job_id, worker_id)
            if job is None:
                return
            job_repo.release(session, job)
            queue_name.append(job.queue)

    with_retry(write, budget, "the hand-back")
    if queue_name:
        enqueue_training(job_id, queue_name[0])


# Torch's own thread count when the worker started, before any job changed it.
DEFAULT_THREADS = torch.get_num_threads()


def training_threads(spec: TrainSpec, device: torch.device, settings: Settings) -> int:
    """Torch threads for a job: the setting, or by the job's size when the setting is 0 (auto)."""
    if settings.worker_torch_threads:
        return settings.worker_torch_threads
    if device.type == "cpu" and step_cost(spec).flops_per_step < settings.worker_single_thread_flops:
        return 1
    return DEFAULT_THREADS


def _eval_examples(claimed: Claimed, settings: Settings) -> int:
    return settings.eval_points if claimed.spec.model.image_size is None else settings.eval_images


def run_job(job_id: str, worker_id: str, settings: Settings, store: ArtifactStore) -> str:
    """Train the job if this worker can claim it. Returns what happened, for logs and tests."""
    claimed = _claim(job_id, worker_id, settings)
    if claimed is job_repo.ClaimRefused.OWNER_AT_CAPACITY:
        log.info("owner at capacity: the job waits queued until one of theirs ends", extra={"job_id": job_id})
        return "waiting_for_capacity"
    if not isinstance(claimed, Claimed):
        log.info("not claimed: finished, cancelled, gone, or trained by a live worker", extra={"job_id": job_id})
        return "not_claimed"
    try:
        return _train(claimed, worker_id, settings, store)
    finally:
        # The job's end may free its owner's capacity for a waiting one.
        dispatch_waiting(settings)


def _train(claimed: Claimed, worker_id: str, settings: Settings, store: ArtifactStore) -> str:
    job_id = claimed.job_id
    context = {"job_id": job_id, "worker": worker_id, "attempt": claimed.attempt}
    log.info("claimed", extra=context)
    signal = StopSignal()
    recorder = Recorder(
        job_id,
        worker_id,
        claimed.recorded_step,
        settings.write_retry_seconds,
        on_failure=lambda exc: signal.stop("lost_claim" if isinstance(exc, ClaimLost) else "writes"),
        primary_measure=primary_measure(claimed.spec),
    )
    # The trainer reports a checkpoint step's metric point (with its evaluation) just before the checkpoint.
    last_point: list[MetricPoint] = []

    def on_metrics(point: MetricPoint) -> None:
        last_point[:] = [point]
        recorder.add_point(point)

    heartbeat = Heartbeat(job_id, worker_id, settings.heartbeat_seconds, signal)
    prefix = checkpoint_prefix(job_id, claimed.attempt)

    def on_checkpoint(checkpoint: Checkpoint) -> None:
        directory = store.local_dir(prefix)
        faults.mid_write(settings, checkpoint.step, directory)
        manifest = save_checkpoint(directory, checkpoint, faults.before_manifest(settings, checkpoint.step))
        facts = read_manifest(manifest)
        store.publish(prefix, [facts["tensors"], manifest.name])
        point = last_point[0] if last_point and last_point[0].step == checkpoint.step else None
        recorder.add_checkpoint(
            CheckpointRecord(
                checkpoint.step,
                f"{prefix}/{manifest.name}",
                facts["sha256"],
                facts["size"],
                measures=point.evaluation if point else None,
                evaluation_error=point.evaluation_error if point else None,
                wasserstein_estimate=point.wasserstein_estimate if point else None,
            )
        )

    recorder.start()
    heartbeat.start()
    outcome, error = "failed", None
    try:
        run = assemble(
            claimed.spec,
            _load_uploaded(claimed.spec, store),
            eval_examples=_eval_examples(claimed, settings),
            cache_dir=settings.cache_dir,
        )
        threads = training_threads(run.spec, run.trainer.device, settings)
        torch.set_num_threads(threads)
        log.info("training on %s with %d torch thread(s)", run.trainer.device, threads, extra=context)
        _resume(run, claimed, store)
        should_stop = signal.is_set
        if settings.fault:

            def should_stop() -> bool:
                faults.poison(settings, run.trainer)
                return signal.is_set()

        hooks = Hooks(
            on_metrics=on_metrics,
            on_checkpoint=on_checkpoint,
            should_stop=should_stop,
            evaluate=faults.evaluation(settings, run.evaluator),
        )
        outcome = run.trainer.fit(hooks)
    except tuple(JOB_ERRORS) as exc:
        kind = next(name for cls, name in JOB_ERRORS.items() if isinstance(exc, cls))
        error = {"type": kind, "message": str(exc)}
        log.warning("job failed: %s", exc, extra=context)
    except Exception as exc:
        error = {"type": "internal_error", "message": f"{type(exc).__name__}: {exc}"}
        log.exception("job crashed", extra=context)
    finally:
        heartbeat.finish()
    try:
        recorder.close()
    except ClaimLost:
        log.warning("claim lost: another worker has the job", extra=context)
        return "lost_claim"
    except WritesFailed as exc:
        error = {"type": "database_unavailable", "message": str(exc)}
        outcome = "failed"
    reason = signal.why
    budget = settings.write_retry_seconds
    try:
        if error is not None:
            _finish(job_id, worker_id, "failed", error, budget)
            return "failed"
        if outcome == "completed":
            _finish(job_id, worker_id, "succeeded", None, budget)
            return "succeeded"
        if reason == "cancel":
            _finish(job_id, worker_id, "cancelled", None, budget)
            return "cancelled"
        if reason == "shutdown":
            _requeue(job_id, worker_id, budget)
            return "requeued"
        return reason or "stopped"
    except ClaimLost:
        return "lost_claim"
    except WritesFailed:
        # Not even the outcome could be written: the claim goes stale and the reaper hands the
        # job to a worker that resumes it from its last checkpoint.
        log.error("could not record the outcome; leaving the job to the reaper", extra=context)
        return "abandoned"
