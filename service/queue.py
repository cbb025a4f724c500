"""The Celery application and job routing: CUDA jobs go to the `gpu` queue, the rest to `cpu`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from celery import Celery
from celery.utils.nodenames import anon_nodename

from service.dispatch import SerialSender
from service.events import Announcement, EventPublisher
from service.settings import Settings
from service.task_messages import queue_key, task_message

log = logging.getLogger(__name__)
TRAIN_TASK = "worker.train"
# One task for the runs of an experiment that train as one stack (wgan.stacked); each still has its marker.
TRAIN_STACK_TASK = "worker.train_stack"
DELIVER_TASK = "worker.webhooks.deliver"
CPU_QUEUE = "cpu"
GPU_QUEUE = "gpu"
# Webhook deliveries have their own queue and their own worker (`wgan-service webhooks`): a receiver that
# hangs must never wait behind hours of training, nor make training wait.
WEBHOOK_QUEUE = "webhooks"
DELIVERY_MARKER = "delivery:"
MARKER_TIMEOUT = 1.0
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0.1, "interval_step": 0.2, "interval_max": 0.5}


def queue_for(device: str) -> str:
    return GPU_QUEUE if device == "cuda" else CPU_QUEUE


@dataclass(frozen=True)
class Outgoing:
    """One task to send: its name and argument, its queue, the sent-markers that stand for it while the
    broker holds it, and the committed events announced just before it."""

    task: str
    argument: object
    queue: str
    markers: tuple[str, ...]
    announce: tuple[Announcement, ...] = ()


def training_task(job_id: str, queue: str, announce: Sequence[Announcement] = ()) -> Outgoing:
    """The task that trains one job, after announcing `announce` (committed events of the job)."""
    return Outgoing(TRAIN_TASK, job_id, queue, (job_id,), tuple(announce))


def stack_task(job_ids: Sequence[str], queue: str) -> Outgoing:
    """One task that trains these jobs as a stack; each keeps its own marker."""
    return Outgoing(TRAIN_STACK_TASK, list(job_ids), queue, tuple(job_ids))


def delivery_task(delivery_id: str) -> Outgoing:
    return Outgoing(DELIVER_TASK, delivery_id, WEBHOOK_QUEUE, (DELIVERY_MARKER + delivery_id,))


def redis_broker(settings: Settings) -> bool:
    return settings.broker_url.startswith(("redis://", "rediss://"))


def key_prefix(settings: Settings) -> str:
    """The prefix of every key the Celery transport keeps in a Redis broker (its queues' lists among them)."""
    return f"{settings.redis_prefix}:"


def celery_config(settings: Settings) -> dict[str, Any]:
    transport: dict[str, Any] = {}
    if redis_broker(settings):
        transport["visibility_timeout"] = settings.visibility_timeout_seconds
        transport["global_keyprefix"] = key_prefix(settings)
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

    def __init__(self, settings: Settings, events: EventPublisher | None = None) -> None:
        self.celery = Celery("wgan")
        self.celery.conf.update(celery_config(settings))
        # A Redis broker is written to directly: each task goes on its queue's list together with a marker
        # (see _send). The marker vanishes exactly when the broker loses its queue (a restart without
        # persistence), so the reaper re-sends what was lost and nothing else.
        self._broker = (
            redis.Redis.from_url(
                settings.broker_url, socket_timeout=MARKER_TIMEOUT, socket_connect_timeout=MARKER_TIMEOUT
            )
            if redis_broker(settings)
            else None
        )
        self._marker_prefix = f"{key_prefix(settings)}sent:"
        self._queue_prefix = key_prefix(settings)
        self._origin = anon_nodename()
        # Announcements handed over with a task (a new job's first event) go out in the task's own round
        # trip when the events Redis is the broker's, as it is by default.
        self._events = events
        self._announce_with_tasks = (
            self._broker is not None and events is not None and events.url == settings.broker_url
        )
        # After the visibility timeout Redis redelivers an unacknowledged task anyway.
        self._marker_seconds = settings.visibility_timeout_seconds
        self._later: SerialSender[Outgoing] = SerialSender(self.send)

    def enqueue_training(self, job_id: str, queue: str, announce: Sequence[Announcement] = ()) -> bool:
        """Send the training task, after announcing `announce` (committed events of the job). False if the
        broker is unreachable: the job stays queued and the reaper sends it again later, so nothing is
        lost (the events are in the database for any stream that missed them)."""
        return self.send([training_task(job_id, queue, announce)])

    def send_delivery(self, delivery_id: str) -> bool:
        """Send a webhook delivery's task. False if the broker is unreachable: the delivery stays pending
        and the webhook sweep sends it again."""
        return self.send([delivery_task(delivery_id)])

    def send(self, outgoing: Sequence[Outgoing]) -> bool:
        """Send these tasks in order; False if the broker could not take them all (what was not sent is
        re-sent by the reaper or the webhook sweep). On a Redis broker they go in one MULTI/EXEC, all or
        none, each one's markers cleared when none went; through Celery's publisher (the embedded broker),
        one by one, each tried."""
        if not outgoing:
            return True
        if not self._announce_with_tasks and any(item.announce for item in outgoing):
            if self._events is None:
                raise ValueError("this TaskQueue has no event publisher to announce with")
            self._events.announce([pair for item in outgoing for pair in item.announce])
        if self._broker is None:
            return all([self._publish(item) for item in outgoing])
        try:
            # With a Redis broker, the announcements, the markers and the tasks in one MULTI/EXEC round trip
            # (service.task_messages): a marker stands exactly when its task was queued, a worker that takes
            # a task at once finds its marker to clear, and the events it then announces come after these.
            pipe = self._broker.pipeline(transaction=True)
            for item in outgoing:
                if self._announce_with_tasks:
                    for channel, payload in item.announce:
                        pipe.publish(channel, payload)
                for marker in item.markers:
                    pipe.set(self._marker_prefix + marker, item.queue, ex=self._marker_seconds)
                message = task_message(item.task, [item.argument], item.queue, self._origin, self.celery.oid)
                pipe.lpush(queue_key(self._queue_prefix, item.queue), message)
            pipe.execute()
        except Exception as exc:
            sent = ", ".join(f"{item.task} {item.argument} on {item.queue}" for item in outgoing[:3])
            more = f" and {len(outgoing) - 3} more" if len(outgoing) > 3 else ""
            log.warning("could not send %s%s: %s", sent, more, exc)
            for item in outgoing:
                for marker in item.markers:
                    self._clear(marker)
            return False
        return True

    def _publish(self, item: Outgoing) -> bool:
        try:
            self.celery.send_task(
                item.task, args=[item.argument], queue=item.queue, retry=True, retry_policy=PUBLISH_RETRY
            )
        except Exception as exc:
            log.warning("could not send %s %s on %s: %s", item.task, item.argument, item.queue, exc)
            return False
        return True

    def taken(self, job_id: str) -> None:
        """A worker has the job's task (or it was never sent): no task of it waits in the broker."""
        self._clear(job_id)

    def delivery_taken(self, delivery_id: str) -> None:
        self._clear(DELIVERY_MARKER + delivery_id)

    def _clear(self, marker: str) -> None:
        if self._broker is None:
            return
        try:
            self._broker.delete(self._marker_prefix + marker)
        except redis.RedisError as exc:
            log.warning("could not clear the sent marker %s: %s", marker, exc)

    def lost(self, jobs: Sequence[tuple[str, str]]) -> list[str]:
        """Of these queued (job id, queue) pairs, the jobs whose task the broker no longer holds.

        With a Redis broker: those whose marker is gone. Without one (the embedded default), the jobs on
        queues that are empty: a duplicate is harmless there, as the claim refuses it.
        """
        return self._lost([(job_id, job_id, queue) for job_id, queue in jobs])

    def lost_deliveries(self, delivery_ids: Sequence[str]) -> list[str]:
        """Of these pending deliveries, those whose task the broker no longer holds (a duplicate is
        harmless: an attempt takes the delivery's lease first)."""
        return self._lost([(DELIVERY_MARKER + did, did, WEBHOOK_QUEUE) for did in delivery_ids])

    def _lost(self, items: Sequence[tuple[str, str, str]]) -> list[str]:
        """Of (marker, id, queue) triples, the ids whose task is no longer in the broker."""
        if not items:
            return []
        if self._broker is None:
            depths = self.depths()
            return [item_id for _, item_id, queue in items if depths.get(queue, 1) == 0]
        try:
            pipe = self._broker.pipeline(transaction=False)
            for marker, _, _ in items:
                pipe.exists(self._marker_prefix + marker)
            present = pipe.execute()
        except redis.RedisError as exc:
            log.warning("cannot tell which tasks the broker holds (%s); re-sending none this time", exc)
            return []
        return [item_id for (_, item_id, _), held in zip(items, present, strict=True) if not held]

    def depths(self) -> dict[str, int]:
        """Tasks waiting per queue, as the broker reports them; empty when it cannot be reached."""
        depths: dict[str, int] = {}
        try:
            with self.celery.connection_for_read() as connection:
                connection.ensure_connection(max_retries=1, timeout=1.0)
                channel = connection.default_channel
                for queue in (CPU_QUEUE, GPU_QUEUE, WEBHOOK_QUEUE):
                    try:
                        depths[queue] = int(channel.queue_declare(queue=queue, passive=True).message_count)
                    except Exception:
                        depths[queue] = 0
        except Exception as exc:
            log.warning("queue depth unavailable: %s", exc)
        return depths

    def defer(self, outgoing: Sequence[Outgoing]) -> None:
        """Send these tasks after the caller has answered, in hand-over order (service.dispatch); for the
        API, whose requests should not wait for the broker."""
        for item in outgoing:
            self._later.defer(item)

    def close(self) -> None:
        self._later.close()
        self.celery.close()
        if self._broker is not None:
            self._broker.close()
