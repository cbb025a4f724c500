"""Running one claimed job: build the engine from its stored spec, resume, train, record, finish."""

from __future__ import annotations

import logging

import numpy as np
import torch

from service import lifecycle
from service.artifacts import ArtifactStore, checkpoint_prefix, dataset_key
from service.lifecycle import Claimed, ClaimLost, NewCheckpoint, NotClaimable, OwnerAtCapacity
from service.records import JobError
from service.runtime import Runtime
from service.settings import Settings
from service.states import ErrorType, JobState, RunOutcome, StopReason
from service.summary import primary_measure
from wgan.assemble import Run, assemble
from wgan.checkpoint import Checkpoint, CheckpointError, load_checkpoint, read_manifest, write_manifest, write_tensors
from wgan.config import SpecError, TrainSpec
from wgan.cost import step_cost
from wgan.data.files import DataError
from wgan.devices import DeviceUnavailable
from wgan.trainer import Hooks, MetricPoint, TrainingDiverged
from worker.extensions import WorkerExtension
from worker.monitor import Heartbeat, StopSignal
from worker.recording import Recorder, WritesFailed, with_retry

log = logging.getLogger(__name__)

# Failures that are the job's own (its spec or data), reported to its owner by type.
JOB_ERRORS: dict[type[BaseException], ErrorType] = {
    TrainingDiverged: ErrorType.DIVERGED,
    DataError: ErrorType.BAD_DATA,
    SpecError: ErrorType.BAD_SPEC,
    DeviceUnavailable: ErrorType.DEVICE_UNAVAILABLE,
}


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


def _finish(rt: Runtime, job_id: str, worker_id: str, state: JobState, error: JobError | None = None) -> None:
    with_retry(
        lambda: lifecycle.finish(rt, job_id, worker_id, state, error), rt.settings.write_retry_seconds, f"the {state}"
    )


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


def run_job(rt: Runtime, job_id: str, worker_id: str, extension: WorkerExtension | None = None) -> RunOutcome:
    """Train the job if this worker can claim it. Returns what happened, for logs and tests."""
    try:
        claimed = lifecycle.claim(rt, job_id, worker_id)
    except OwnerAtCapacity:
        log.info("owner at capacity: the job waits until one of theirs ends", extra={"job_id": job_id})
        return RunOutcome.WAITING_FOR_CAPACITY
    except NotClaimable:
        log.info("not claimed: finished, cancelled, gone, or trained by a live worker", extra={"job_id": job_id})
        return RunOutcome.NOT_CLAIMED
    try:
        return _train(rt, claimed, worker_id, extension or WorkerExtension())
    finally:
        # The job's end may free its owner's capacity for a waiting one.
        lifecycle.dispatch_waiting(rt)


def _train(rt: Runtime, claimed: Claimed, worker_id: str, extension: WorkerExtension) -> RunOutcome:
    settings, store = rt.settings, rt.store
    job_id = claimed.job_id
    context = {"job_id": job_id, "worker": worker_id, "attempt": claimed.attempt}
    log.info("claimed", extra=context)
    signal = StopSignal()
    recorder = Recorder(
        rt,
        job_id,
        worker_id,
        claimed.recorded_step,
        settings.write_retry_seconds,
        on_failure=lambda exc: signal.stop(StopReason.LOST_CLAIM if isinstance(exc, ClaimLost) else StopReason.WRITES),
        primary_measure=primary_measure(claimed.spec),
    )
    # The trainer reports a checkpoint step's metric point (with its evaluation) just before the checkpoint.
    last_point: list[MetricPoint] = []

    def on_metrics(point: MetricPoint) -> None:
        last_point[:] = [point]
        recorder.add_point(point)

    heartbeat = Heartbeat(rt, job_id, worker_id, settings.heartbeat_seconds, signal)
    prefix = checkpoint_prefix(job_id, claimed.attempt)

    def on_checkpoint(checkpoint: Checkpoint) -> None:
        directory = store.local_dir(prefix)
        extension.before_checkpoint(checkpoint.step, directory)
        tensors = write_tensors(directory, checkpoint)
        extension.after_tensors(checkpoint.step, tensors.path)
        manifest = write_manifest(directory, checkpoint, tensors)
        facts = read_manifest(manifest)
        store.publish(prefix, [facts["tensors"], manifest.name])
        point = last_point[0] if last_point and last_point[0].step == checkpoint.step else None
        recorder.add_checkpoint(
            NewCheckpoint(
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
    completed, error = False, None
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
        hooks = Hooks(
            on_metrics=on_metrics,
            on_checkpoint=on_checkpoint,
            should_stop=extension.should_stop(run.trainer, signal.is_set),
            evaluate=extension.evaluate(run.evaluator),
        )
        completed = run.trainer.fit(hooks) == "completed"
    except tuple(JOB_ERRORS) as exc:
        kind = next(name for cls, name in JOB_ERRORS.items() if isinstance(exc, cls))
        error = JobError(type=kind, message=str(exc))
        log.warning("job failed: %s", exc, extra=context)
    except Exception as exc:
        error = JobError(type=ErrorType.INTERNAL_ERROR, message=f"{type(exc).__name__}: {exc}")
        log.exception("job crashed", extra=context)
    finally:
        heartbeat.finish()
    try:
        recorder.close()
    except ClaimLost:
        log.warning("claim lost: another worker has the job", extra=context)
        return RunOutcome.LOST_CLAIM
    except WritesFailed as exc:
        error = JobError(type=ErrorType.DATABASE_UNAVAILABLE, message=str(exc))
    reason = signal.why
    try:
        if error is not None:
            _finish(rt, job_id, worker_id, JobState.FAILED, error)
            return RunOutcome.FAILED
        if completed:
            _finish(rt, job_id, worker_id, JobState.SUCCEEDED)
            return RunOutcome.SUCCEEDED
        if reason is StopReason.CANCEL:
            _finish(rt, job_id, worker_id, JobState.CANCELLED)
            return RunOutcome.CANCELLED
        if reason is StopReason.SHUTDOWN:
            # Handed back: it waits queued and resumes from its checkpoint.
            with_retry(lambda: lifecycle.hand_back(rt, job_id, worker_id), settings.write_retry_seconds, "hand-back")
            return RunOutcome.REQUEUED
        return RunOutcome.LOST_CLAIM if reason is StopReason.LOST_CLAIM else RunOutcome.STOPPED
    except ClaimLost:
        return RunOutcome.LOST_CLAIM
    except WritesFailed:
        # Not even the outcome could be written: the claim goes stale and the reaper hands the
        # job to a worker that resumes it from its last checkpoint.
        log.error("could not record the outcome; leaving the job to the reaper", extra=context)
        return RunOutcome.ABANDONED
