"""Running claimed jobs, alone or as a stack: build the engine from each stored spec, resume, train, record,
finish."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

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
from wgan.stacked import RunResult, StackedTrainer, can_stack
from wgan.trainer import Hooks, MetricPoint, TrainingDiverged
from worker.cores import ThreadGovernor
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


def training_threads(spec: TrainSpec, device: torch.device, settings: Settings, runs: int = 1) -> int:
    """Torch threads for a job (or a stack of `runs` like it): the setting, or by the work per step when
    the setting is 0 (auto)."""
    if settings.worker_torch_threads:
        return settings.worker_torch_threads
    if device.type == "cpu" and runs * step_cost(spec).flops_per_step < settings.worker_single_thread_flops:
        return 1
    return DEFAULT_THREADS


def _governor(threads: int, run: Run, settings: Settings, context: Mapping[str, object]) -> ThreadGovernor:
    """Torch threads set for the run, revisited as the host's cores come and go (CPU only: a GPU run's
    threads only feed the device)."""
    every = settings.worker_threads_adapt_seconds if run.trainer.device.type == "cpu" else 0.0
    return ThreadGovernor(threads, every, context=context)


def _eval_examples(claimed: Claimed, settings: Settings) -> int:
    return settings.eval_points if claimed.spec.model.image_size is None else settings.eval_images


def _claim(rt: Runtime, job_id: str, worker_id: str) -> Claimed | RunOutcome:
    try:
        return lifecycle.claim(rt, job_id, worker_id)
    except OwnerAtCapacity:
        log.info("owner at capacity: the job waits until one of theirs ends", extra={"job_id": job_id})
        return RunOutcome.WAITING_FOR_CAPACITY
    except NotClaimable:
        log.info("not claimed: finished, cancelled, gone, or trained by a live worker", extra={"job_id": job_id})
        return RunOutcome.NOT_CLAIMED


def run_job(rt: Runtime, job_id: str, worker_id: str, extension: WorkerExtension | None = None) -> RunOutcome:
    """Train the job if this worker can claim it. Returns what happened, for logs and tests."""
    claimed = _claim(rt, job_id, worker_id)
    if isinstance(claimed, RunOutcome):
        return claimed
    session = RunSession(rt, claimed, worker_id, extension or WorkerExtension())
    try:
        completed, error = False, None
        try:
            run = session.prepare()
            threads = training_threads(run.spec, run.trainer.device, rt.settings)
            governor = _governor(threads, run, rt.settings, session.context)
            log.info("training on %s with %d torch thread(s)", run.trainer.device, threads, extra=session.context)
            completed = run.trainer.fit(session.hooks(run, governor.tick)) == "completed"
        except Exception as exc:
            error = session.error_of(exc)
        return session.conclude(completed, error)
    finally:
        # The job's end may free its owner's capacity for a waiting one.
        lifecycle.dispatch_waiting(rt)


def run_stack(
    rt: Runtime, job_ids: list[str], worker_id: str, extension: WorkerExtension | None = None
) -> dict[str, RunOutcome]:
    """Train the jobs this worker can claim as one stack (wgan.stacked). Each stays its own job: its claim,
    heartbeat, recorder, checkpoints and end; one that cannot join (prepared at another step) is handed
    back to train alone."""
    extension = extension or WorkerExtension()
    outcomes: dict[str, RunOutcome] = {}
    sessions: list[RunSession] = []
    for job_id in job_ids:
        claimed = _claim(rt, job_id, worker_id)
        if isinstance(claimed, RunOutcome):
            outcomes[job_id] = claimed
        else:
            sessions.append(RunSession(rt, claimed, worker_id, extension))
    try:
        runs: dict[str, Run] = {}
        for session in sessions:
            try:
                runs[session.job_id] = session.prepare()
            except Exception as exc:
                outcomes[session.job_id] = session.conclude(False, session.error_of(exc))
        joining = [s for s in sessions if s.job_id in runs]
        if joining:
            first = runs[joining[0].job_id].trainer
            for session in joining[1:]:
                if not can_stack([first, runs[session.job_id].trainer]):
                    outcomes[session.job_id] = session.hand_back("it cannot share the stack (resumed at another step)")
            joining = [s for s in joining if s.job_id not in outcomes]
            outcomes.update(_train_stack(rt, joining, [runs[s.job_id] for s in joining]))
        return outcomes
    finally:
        lifecycle.dispatch_waiting(rt)


def _train_stack(rt: Runtime, sessions: list[RunSession], runs: list[Run]) -> dict[str, RunOutcome]:
    first = runs[0]
    threads = training_threads(first.spec, first.trainer.device, rt.settings, runs=len(runs))
    governor = _governor(threads, first, rt.settings, {"jobs": ",".join(s.job_id for s in sessions)})
    log.info(
        "training a stack of %d runs on %s with %d torch thread(s): %s",
        len(runs),
        first.trainer.device,
        threads,
        ", ".join(s.job_id for s in sessions),
    )
    outcomes: dict[str, RunOutcome] = {}

    def conclude(k: int, result: RunResult) -> None:
        # At once: a run cancelled mid-stack is cancelled now, not when the others end.
        session = sessions[k]
        error = None if result.error is None else session.error_of(result.error)
        outcomes[session.job_id] = session.conclude(result.outcome == "completed", error)

    try:
        StackedTrainer([run.trainer for run in runs]).fit(
            [session.hooks(run, governor.tick) for session, run in zip(sessions, runs, strict=True)],
            on_leave=conclude,
        )
    except Exception as exc:
        # The stack itself broke (not one run's losses or hooks): every run still in it ends with the reason.
        for session in sessions:
            if session.job_id not in outcomes:
                outcomes[session.job_id] = session.conclude(False, session.error_of(exc))
    return outcomes


class RunSession:
    """One claimed job while a worker trains it, alone or in a stack: its stop signal, heartbeat and
    recorder, the hooks that record its metrics and checkpoints, and the transition that ends it."""

    def __init__(self, rt: Runtime, claimed: Claimed, worker_id: str, extension: WorkerExtension) -> None:
        self.rt, self.claimed, self.worker_id, self.extension = rt, claimed, worker_id, extension
        self.job_id = claimed.job_id
        self.context = {"job_id": self.job_id, "worker": worker_id, "attempt": claimed.attempt}
        log.info("claimed", extra=self.context)
        self.signal = StopSignal()
        self.recorder = Recorder(
            rt,
            self.job_id,
            worker_id,
            claimed.recorded_step,
            rt.settings.write_retry_seconds,
            on_failure=lambda exc: self.signal.stop(
                StopReason.LOST_CLAIM if isinstance(exc, ClaimLost) else StopReason.WRITES
            ),
            primary_measure=primary_measure(claimed.spec),
        )
        self.heartbeat = Heartbeat(rt, self.job_id, worker_id, rt.settings.heartbeat_seconds, self.signal)
        self.prefix = checkpoint_prefix(self.job_id, claimed.attempt)
        # The trainer reports a checkpoint step's metric point (with its evaluation) just before the checkpoint.
        self._last_point: MetricPoint | None = None
        self.recorder.start()
        self.heartbeat.start()

    def prepare(self) -> Run:
        """The job's run, resumed from its newest checkpoint that verifies."""
        settings = self.rt.settings
        run = assemble(
            self.claimed.spec,
            _load_uploaded(self.claimed.spec, self.rt.store),
            eval_examples=_eval_examples(self.claimed, settings),
            cache_dir=settings.cache_dir,
        )
        _resume(run, self.claimed, self.rt.store)
        return run

    def hooks(self, run: Run, every_step: Callable[[], None]) -> Hooks:
        """The trainer's hooks for this job; `every_step` runs on the training thread after each step."""
        stop = self.extension.should_stop(run.trainer, self.signal.is_set)

        def should_stop() -> bool:
            every_step()
            return stop()

        return Hooks(
            on_metrics=self._on_metrics,
            on_checkpoint=self._on_checkpoint,
            should_stop=should_stop,
            evaluate=self.extension.evaluate(run.evaluator),
        )

    def _on_metrics(self, point: MetricPoint) -> None:
        self._last_point = point
        self.recorder.add_point(point)

    def _on_checkpoint(self, checkpoint: Checkpoint) -> None:
        store, extension = self.rt.store, self.extension
        directory = store.local_dir(self.prefix)
        extension.before_checkpoint(checkpoint.step, directory)
        tensors = write_tensors(directory, checkpoint)
        extension.after_tensors(checkpoint.step, tensors.path)
        manifest = write_manifest(directory, checkpoint, tensors)
        facts = read_manifest(manifest)
        store.publish(self.prefix, [facts["tensors"], manifest.name])
        point = self._last_point if self._last_point and self._last_point.step == checkpoint.step else None
        self.recorder.add_checkpoint(
            NewCheckpoint(
                checkpoint.step,
                f"{self.prefix}/{manifest.name}",
                facts["sha256"],
                facts["size"],
                measures=point.evaluation if point else None,
                evaluation_error=point.evaluation_error if point else None,
                wasserstein_estimate=point.wasserstein_estimate if point else None,
            )
        )

    def error_of(self, exc: BaseException) -> JobError:
        """The job's error for what stopped it: its own fault by type, or the service's."""
        kind = next((name for cls, name in JOB_ERRORS.items() if isinstance(exc, cls)), None)
        if kind is not None:
            log.warning("job failed: %s", exc, extra=self.context)
            return JobError(type=kind, message=str(exc))
        log.error("job crashed", exc_info=exc, extra=self.context)
        return JobError(type=ErrorType.INTERNAL_ERROR, message=f"{type(exc).__name__}: {exc}")

    def hand_back(self, why: str) -> RunOutcome:
        log.info("handing the job back: %s", why, extra=self.context)
        self.signal.stop(StopReason.SHUTDOWN)
        return self.conclude(False, None, handing_back=True)

    def conclude(self, completed: bool, error: JobError | None, handing_back: bool = False) -> RunOutcome:
        """Stop the heartbeat, write what is queued, and make the transition its end calls for."""
        rt, job_id, worker_id = self.rt, self.job_id, self.worker_id
        self.heartbeat.finish()
        try:
            self.recorder.close()
        except ClaimLost:
            log.warning("claim lost: another worker has the job", extra=self.context)
            return RunOutcome.LOST_CLAIM
        except WritesFailed as exc:
            error = JobError(type=ErrorType.DATABASE_UNAVAILABLE, message=str(exc))
        reason = StopReason.SHUTDOWN if handing_back else self.signal.why
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
                with_retry(
                    lambda: lifecycle.hand_back(rt, job_id, worker_id), rt.settings.write_retry_seconds, "hand-back"
                )
                return RunOutcome.REQUEUED
            return RunOutcome.LOST_CLAIM if reason is StopReason.LOST_CLAIM else RunOutcome.STOPPED
        except ClaimLost:
            return RunOutcome.LOST_CLAIM
        except WritesFailed:
            # Not even the outcome could be written: the claim goes stale and the reaper hands the
            # job to a worker that resumes it from its last checkpoint.
            log.error("could not record the outcome; leaving the job to the reaper", extra=self.context)
            return RunOutcome.ABANDONED
