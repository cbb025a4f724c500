"""The Celery application and job routing: CUDA jobs go to the `gpu` queue, the rest to `cpu`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from celery import Celery

from service.settings import Settings

log = logging.getLogger(__name__)
TRAIN_TASK = "worker.train"
CPU_QUEUE = "cpu"
GPU_QUEUE = "gpu"
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0.1, "interval_step": 0.2, "interval_max": 0.5}


def queue_for(device: str) -> str:
    return GPU_QUEUE if device == "cuda" else CPU_QUEUE


def celery_config(settings: Settings) -> dict[str, Any]:
    transport: dict[str, Any] = {}
    if settings.broker_url.startswith(("redis://", "rediss://")):
        transport["visibility_timeout"] = settings.visibility_timeout_seconds
        transport["global_keyprefix"] = f"{settings.redis_prefix}:"
    if settings.broker_url.startswith("sqla+sqlite"):
        Path(settings.broker_url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    return {
        "broker_url": settings.broker_url,
        "broker_transport_options": transport,
        "broker_connection_retry_on_startup": True,
        # Hours-long tasks: acknowledge only when done, take one at a time, and give the
        # message back if the worker process dies (the job's claim stops double training).
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": CPU_QUEUE,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        "task_publish_retry_policy": PUBLISH_RETRY,
    }


class TaskQueue:
    """The broker as the service uses it: the Celery app that sends training tasks (and that workers run)."""

    def __init__(self, settings: Settings) -> None:
        self.celery = Celery("wgan")
        self.celery.conf.update(celery_config(settings))

    def enqueue_training(self, job_id: str, queue: str) -> bool:
        """Send the training task. False if the broker is unreachable: the job stays queued and the
        reaper sends it again later, so nothing is lost."""
        try:
            self.celery.send_task(TRAIN_TASK, args=[job_id], queue=queue, retry=True, retry_policy=PUBLISH_RETRY)
        except Exception as exc:
            log.warning("could not enqueue job %s on %s: %s", job_id, queue, exc)
            return False
        return True

    def depths(self) -> dict[str, int]:
        """Tasks waiting per queue, as the broker reports them; empty when it cannot be reached."""
        depths: dict[str, int] = {}
        try:
            with self.celery.connection_for_read() as connection:
                connection.ensure_connection(max_retries=1, timeout=1.0)
                channel = connection.default_channel
                for queue in (CPU_QUEUE, GPU_QUEUE):
                    try:
                        depths[queue] = int(channel.queue_declare(queue=queue, passive=True).message_count)
                    except Exception:
                        depths[queue] = 0
        except Exception as exc:
            log.warning("queue depth unavailable: %s", exc)
        return depths

    def close(self) -> None:
        self.celery.close()
