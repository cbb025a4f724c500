"""The webhook sender's process (`wgan-service webhooks`): a Celery worker on the webhooks queue whose
threads each make one delivery attempt at a time, and the sweep that sends due retries and re-sends
deliveries whose task the broker lost. It loads no training code: a receiver's trouble stays here."""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import Celery
from celery.signals import worker_ready, worker_shutting_down

from service import webhooks
from service.db import Database
from service.queue import DELIVER_TASK, TaskQueue
from service.settings import Settings
from worker.alive import mark_alive
from worker.webhook_sender import send

log = logging.getLogger(__name__)
SWEEP_BATCH = 500
# Finished deliveries are pruned every this many sweeps (ten minutes at the default sweep interval).
PRUNE_EVERY_SWEEPS = 120


def deliver(db: Database, tasks: TaskQueue, settings: Settings, delivery_id: str) -> str:
    """One attempt at a delivery, if it is due and no other sender holds it; what became of it."""
    tasks.delivery_taken(delivery_id)
    attempt = webhooks.start_attempt(db, settings, delivery_id)
    if attempt is None:
        return "skipped"
    outcome = send(attempt, settings)
    state = webhooks.finish_attempt(db, settings, attempt, outcome.status_code, outcome.error)
    if outcome.error is not None:
        log.info("delivery %s attempt %d: %s (%s)", delivery_id, attempt.attempt, outcome.error, state.value)
    return state.value


class Sweeper(threading.Thread):
    def __init__(self, db: Database, tasks: TaskQueue, settings: Settings) -> None:
        super().__init__(name="webhook-sweep", daemon=True)
        self.db, self.tasks, self.settings = db, tasks, settings
        self._done = threading.Event()

    def run(self) -> None:
        sweeps = 0
        while not self._done.wait(self.settings.webhook_sweep_seconds):
            try:
                for delivery_id in self.tasks.lost_deliveries(webhooks.due(self.db, SWEEP_BATCH)):
                    self.tasks.send_delivery(delivery_id)
                if sweeps % PRUNE_EVERY_SWEEPS == 0:
                    webhooks.prune(self.db, self.settings)
            except Exception:
                log.exception("webhook sweep failed")
            else:
                mark_alive(self.settings.worker_alive_file)
            sweeps += 1

    def stop(self) -> None:
        self._done.set()


def webhook_app(settings: Settings) -> Celery:
    """The broker's Celery app with the delivery task, ready for `worker_main` with a thread pool."""
    db = Database.from_settings(settings)
    tasks = TaskQueue(settings)
    sweeper = Sweeper(db, tasks, settings)
    app = tasks.celery

    @app.task(name=DELIVER_TASK, ignore_result=True)  # type: ignore[untyped-decorator]
    def deliver_task(delivery_id: str) -> str:
        return deliver(db, tasks, settings, delivery_id)

    def on_ready(**_: Any) -> None:
        sweeper.start()
        log.info("webhook sender ready: %d at once", settings.webhook_concurrency)
        # Alive from the start, not only after its first sweep: `wgan-service dev` waits for it.
        mark_alive(settings.worker_alive_file)

    def on_shutdown(**_: Any) -> None:
        sweeper.stop()

    worker_ready.connect(on_ready, weak=False)
    worker_shutting_down.connect(on_shutdown, weak=False)
    return app
