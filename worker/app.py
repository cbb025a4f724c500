"""A worker process's Celery app: the training task, and the worker's lifecycle hooks (start the
reaper, stop trainers on SIGTERM), all on the Runtime its composition root made."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from typing import Any

from celery import Celery
from celery.signals import worker_ready, worker_shutting_down

from service.logging_setup import job_logging
from service.queue import TRAIN_STACK_TASK, TRAIN_TASK
from service.runtime import Runtime
from worker.extensions import load_extension
from worker.monitor import SHUTDOWN
from worker.reaper import Reaper
from worker.training import run_job, run_stack

log = logging.getLogger(__name__)


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def worker_app(rt: Runtime, worker_id: str) -> Celery:
    """The broker's Celery app with the training task bound to `rt`, ready for `worker_main`. Its claims
    carry `worker_id`, as `rt`'s database sessions carry its name (service.fencing)."""
    extension = load_extension(rt.settings)
    reaper = Reaper(rt)
    app = rt.tasks.celery

    @app.task(name=TRAIN_TASK, ignore_result=True)  # type: ignore[untyped-decorator]
    def train(job_id: str) -> str:
        rt.tasks.taken(job_id)
        with job_logging(job_id):
            return run_job(rt, job_id, worker_id, extension).value

    @app.task(name=TRAIN_STACK_TASK, ignore_result=True)  # type: ignore[untyped-decorator]
    def train_stack(job_ids: list[str]) -> dict[str, str]:
        for job_id in job_ids:
            rt.tasks.taken(job_id)
        outcomes = run_stack(rt, job_ids, worker_id, extension)
        return {job_id: outcome.value for job_id, outcome in outcomes.items()}

    def on_ready(**_: Any) -> None:
        # Torch threads are set per job (worker.training.training_threads).
        # Training yields to the API on a shared machine.
        os.nice(rt.settings.worker_nice)
        reaper.start()
        # What its command chose before torch loaded (wgan_service.openmp), or what its operator set.
        openmp = [f"{name}={os.environ[name]}" for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT") if name in os.environ]
        log.info(
            "worker %s ready on queues %s; OpenMP %s", worker_id, rt.settings.queues, " ".join(openmp) or "defaults"
        )

    def on_shutdown(**_: Any) -> None:
        # Celery's warm shutdown waits for the running task; this makes that task checkpoint and
        # hand its job back within seconds instead of training on for hours.
        SHUTDOWN.set()
        reaper.stop()

    worker_ready.connect(on_ready, weak=False)
    worker_shutting_down.connect(on_shutdown, weak=False)
    return app
