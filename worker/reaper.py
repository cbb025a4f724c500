"""Finding jobs whose worker vanished, and queued jobs whose task message was lost."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import timedelta

from service.db import transaction
from service.models import utcnow
from service.queue import enqueue_training, queue_depths
from service.repositories import jobs as job_repo
from service.settings import Settings
from worker.dispatch import dispatch_waiting

log = logging.getLogger(__name__)


@dataclass
class Reaped:
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)
    dispatched: list[str] = field(default_factory=list)


def reap(settings: Settings) -> Reaped:
    """One pass. Safe to run in many workers at once: each change re-checks its condition."""
    now = utcnow()
    result = Reaped()
    to_send: list[tuple[str, str]] = []
    with transaction() as session:
        for job in job_repo.stale_running(session, now - timedelta(seconds=settings.claim_stale_seconds)):
            if job.attempts >= settings.max_attempts:
                job_repo.set_status(
                    session,
                    job,
                    "failed",
                    {
                        "type": "worker_lost",
                        "message": f"the worker training this job stopped responding; {job.attempts} attempts made",
                    },
                )
                result.failed.append(job.id)
            else:
                job_repo.release(session, job)
                to_send.append((job.id, job.queue))
                result.requeued.append(job.id)
    # A queued job that waited long while its queue is empty lost its message (a broker restart
    # without persistence, say): send it again. A duplicate would only be refused by the claim.
    depths = queue_depths()
    with transaction() as session:
        for job in job_repo.waiting_too_long(session, now - timedelta(seconds=settings.requeue_queued_seconds)):
            if depths.get(job.queue, 1) == 0:
                job.enqueued_at = now
                to_send.append((job.id, job.queue))
                result.resent.append(job.id)
    for job_id, queue in to_send:
        enqueue_training(job_id, queue)
    result.dispatched = dispatch_waiting(settings)
    if result.requeued or result.failed or result.resent:
        log.info("reaper: requeued %s, failed %s, resent %s", result.requeued, result.failed, result.resent)
    return result


class Reaper(threading.Thread):
    def __init__(self, settings: Settings) -> None:
        super().__init__(name="reaper", daemon=True)
        self.settings = settings
        self._done = threading.Event()

    def run(self) -> None:
        self._mark_alive()
        while not self._done.wait(self.settings.reaper_seconds):
            try:
                reap(self.settings)
            except Exception:
                log.exception("reaper pass failed")
            else:
                self._mark_alive()

    def _mark_alive(self) -> None:
        # What `wgan-service healthcheck worker` reads: fresh while this worker runs and reaches its database.
        path = self.settings.worker_alive_file
        if path is not None:
            try:
                path.touch()
            except OSError as exc:
                log.warning("cannot touch the alive file %s: %s", path, exc)

    def stop(self) -> None:
        self._done.set()
