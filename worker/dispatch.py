"""Sending jobs that waited for their owner's capacity once that capacity is free."""

from __future__ import annotations

import logging

from service.db import transaction
from service.models import utcnow
from service.queue import enqueue_training
from service.repositories import jobs as job_repo
from service.settings import Settings

log = logging.getLogger(__name__)


def dispatch_waiting(settings: Settings) -> list[str]:
    """Send waiting jobs whose owners have room. Returns their ids. Never raises: it is a nudge,
    and the reaper calls it again on its next pass."""
    try:
        with transaction() as session:
            jobs = job_repo.dispatchable(session, settings.max_running_per_owner)
            now = utcnow()
            for job in jobs:
                job.enqueued_at = now
            chosen = [(job.id, job.queue) for job in jobs]
    except Exception:
        log.exception("dispatching waiting jobs failed")
        return []
    for job_id, queue in chosen:
        enqueue_training(job_id, queue)
    return [job_id for job_id, _ in chosen]
