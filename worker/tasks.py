"""The Celery task and the worker's lifecycle hooks (start the reaper, stop trainers on SIGTERM)."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from typing import Any

from celery import Celery
from celery.signals import worker_ready, worker_shutting_down

from service.artifacts import store_for
from service.logging_setup import job_logging
from service.queue import TRAIN_TASK, celery_app
from service.settings import get_settings
from worker.monitor import SHUTDOWN
from worker.reaper import Reaper
from worker.training import run_job

log = logging.getLogger(__name__)
app: Celery = celery_app()
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
_reaper: list[Reaper] = []


@app.task(name=TRAIN_TASK, ignore_result=True)  # type: ignore[untyped-decorator]
def train(job_id: str) -> str:
    settings = get_settings()
    with job_logging(job_id):
        return run_job(job_id, WORKER_ID, settings, store_for(settings))


@worker_ready.connect  # type: ignore[untyped-decorator]
def _on_ready(**_: Any) -> None:
    settings = get_settings()
    # Torch threads are set per job (worker.training.training_threads).
    # Training yields to the API on a shared machine.
    os.nice(settings.worker_nice)
    reaper = Reaper(settings)
    reaper.start()
    _reaper.append(reaper)
    log.info("worker %s ready on queues %s", WORKER_ID, settings.queues)


@worker_shutting_down.connect  # type: ignore[untyped-decorator]
def _on_shutdown(**_: Any) -> None:
    # Celery's warm shutdown waits for the running task; this makes that task checkpoint and
    # hand its job back within seconds instead of training on for hours.
    SHUTDOWN.set()
    for reaper in _reaper:
        reaper.stop()
