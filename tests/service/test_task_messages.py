"""The task message the service writes to a Redis broker itself is the one Celery's own publisher writes."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from service.events import EventPublisher
from service.queue import PUBLISH_RETRY, TRAIN_TASK, TaskQueue, key_prefix, stack_task, training_task
from service.settings import Settings
from tests.support import service as under_test, stack

# Values that differ between any two sends: fresh ids, and the sending process's name and reply queue.
PER_SEND = {"id", "root_id", "correlation_id", "delivery_tag", "origin", "reply_to"}


@pytest.fixture
def tasks() -> Iterator[tuple[TaskQueue, Settings, redis.Redis]]:
    settings = under_test.settings().model_copy(update={"redis_prefix": f"msg-{uuid.uuid4().hex[:8]}"})
    queue = TaskQueue(settings)
    client = redis.Redis.from_url(settings.broker_url)
    yield queue, settings, client
    queue.close()
    client.close()
    stack.clear_redis_prefix(settings.redis_prefix)


def _without_per_send(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: "…" if key in PER_SEND else _without_per_send(item) for key, item in value.items()}
    return value


def _queued(client: redis.Redis, settings: Settings, queue: str) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in client.lrange(f"{key_prefix(settings)}{queue}", 0, -1)]


def test_a_task_sent_directly_is_what_celery_sends_and_carries_its_marker(tasks) -> None:
    queue, settings, client = tasks
    queue.celery.send_task(TRAIN_TASK, args=["job-a"], queue="by-celery", retry=True, retry_policy=PUBLISH_RETRY)
    assert queue.enqueue_training("job-a", "direct")

    [celery_sent] = _queued(client, settings, "by-celery")
    [direct] = _queued(client, settings, "direct")
    celery_sent["properties"]["delivery_info"]["routing_key"] = "direct"
    # Every field, nested ones too, with the same value; only the per-send ones differ, and only in value.
    assert _without_per_send(direct) == _without_per_send(celery_sent)
    assert base64.b64decode(direct["body"]) == base64.b64decode(celery_sent["body"])
    headers = direct["headers"]
    assert headers["id"] == headers["root_id"] == direct["properties"]["correlation_id"]
    assert direct["properties"]["delivery_tag"] != headers["id"]
    assert json.loads(base64.b64decode(direct["body"]))[0] == ["job-a"]
    # The marker the reaper reads stands for the task just queued.
    assert queue.lost([("job-a", "direct"), ("job-never-sent", "direct")]) == ["job-never-sent"]


def test_each_send_has_its_own_ids(tasks) -> None:
    queue, settings, client = tasks
    for job_id in ("job-1", "job-2"):
        assert queue.enqueue_training(job_id, "direct")
    newest, oldest = _queued(client, settings, "direct")
    assert newest["headers"]["id"] != oldest["headers"]["id"]
    assert newest["properties"]["delivery_tag"] != oldest["properties"]["delivery_tag"]
    assert [json.loads(base64.b64decode(m["body"]))[0] for m in (oldest, newest)] == [["job-1"], ["job-2"]]


def test_a_send_to_a_broker_that_cannot_be_reached_says_so(tasks) -> None:
    _, settings, _ = tasks
    away = TaskQueue(settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"}))
    try:
        assert not away.enqueue_training("job-x", "direct")
        assert not away.send([training_task("job-y", "direct"), stack_task(["job-z", "job-w"], "direct")])
    finally:
        away.close()


def _arguments(client: redis.Redis, settings: Settings, queue: str) -> list[Any]:
    """The tasks' arguments in the order a worker takes them (Celery pops the list's far end)."""
    return [json.loads(base64.b64decode(m["body"]))[0][0] for m in reversed(_queued(client, settings, queue))]


def test_tasks_sent_together_reach_their_queues_in_order_with_their_markers(tasks) -> None:
    queue, settings, client = tasks
    together = [
        training_task("job-1", "direct"),
        stack_task(["job-2", "job-3"], "direct"),
        training_task("job-4", "gpu"),
    ]
    assert queue.send(together)
    assert _arguments(client, settings, "direct") == ["job-1", ["job-2", "job-3"]]
    assert _arguments(client, settings, "gpu") == ["job-4"]
    pairs = [("job-1", "direct"), ("job-2", "direct"), ("job-3", "direct"), ("job-4", "gpu"), ("job-5", "direct")]
    assert queue.lost(pairs) == ["job-5"]


def test_deferred_tasks_are_sent_in_hand_over_order(tasks) -> None:
    queue, settings, client = tasks
    for index in range(40):
        queue.defer([training_task(f"job-{index}", "direct")])
    queue.defer([training_task("job-40", "direct"), training_task("job-41", "direct")])
    queue.close()  # sends what waits, then stops
    assert _arguments(client, settings, "direct") == [f"job-{index}" for index in range(42)]


def _announced(client: redis.Redis, channel: str, send: Callable[[], bool]) -> list[str]:
    listener = client.pubsub(ignore_subscribe_messages=True)
    listener.subscribe(channel)
    listener.get_message(timeout=1.0)  # the subscription's confirmation
    assert send()
    heard = []
    while (item := listener.get_message(timeout=0.5)) is not None:
        heard.append(item["data"].decode())
    listener.close()
    return heard


@pytest.mark.parametrize("events_on", ["the broker", "another url"])
def test_a_new_jobs_announcement_goes_out_with_its_task(tasks, events_on: str) -> None:
    _, settings, client = tasks
    # Another URL (another database number) means another client and its own round trip; pub/sub reaches
    # subscribers on every database of the server, so one listener hears both.
    url = settings.broker_url if events_on == "the broker" else settings.broker_url.rsplit("/", 1)[0] + "/9"
    events = EventPublisher(url, f"{settings.redis_prefix}:events:")
    queue = TaskQueue(settings, events)
    try:
        channel = events.channel("job-b")
        heard = _announced(client, channel, lambda: queue.enqueue_training("job-b", "direct", [(channel, "queued")]))
    finally:
        queue.close()
        events.close()
    assert heard == ["queued"]
    [task] = _queued(client, settings, "direct")
    assert json.loads(base64.b64decode(task["body"]))[0] == ["job-b"]


def test_announcing_without_a_publisher_is_refused(tasks) -> None:
    queue, settings, client = tasks
    with pytest.raises(ValueError, match="no event publisher"):
        queue.enqueue_training("job-c", "direct", [("somewhere", "queued")])
    assert _queued(client, settings, "direct") == []
