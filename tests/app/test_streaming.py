"""The API's event hub against a real Redis: it subscribes to the channels of the streams open in its
process and to no others, delivers what is published on them, and makes its streams re-read the database
whenever something may have been missed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from app.streaming import IDLE_SECONDS, EventHub, Subscription
from service.events import encode
from service.models import Event
from tests.support.stack import REDIS_URL

pytestmark = pytest.mark.anyio
WAIT_SECONDS = 5.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def payload(seq: int, status: str) -> str:
    return encode(Event(job_id=str(uuid.uuid4()), seq=seq, type="status", data={"status": status}))


@pytest.fixture
async def hub() -> AsyncIterator[EventHub]:
    tag = uuid.uuid4().hex[:8]
    events = EventHub(REDIS_URL, f"wgan-test-hub-{tag}:events:", client_name=f"wgan-test-hub-{tag}")
    await events.start()
    await until(lambda: events.connected)
    try:
        yield events
    finally:
        await events.stop()


@pytest.fixture
async def redis_client() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


async def until(predicate: Callable[[], bool | Awaitable[bool]], what: str = "the condition") -> None:
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    while True:
        found = predicate()
        if not isinstance(found, bool):
            found = await found
        if found:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def subscribers(client: aioredis.Redis, channel: str) -> int:
    counts = dict(await client.pubsub_numsub(channel))
    return int(counts.get(channel, 0))


async def hub_connection(client: aioredis.Redis, hub: EventHub) -> dict[str, Any]:
    """The hub's own connection as CLIENT LIST shows it (other processes on this Redis hold patterns)."""
    mine = [entry for entry in await client.client_list() if entry.get("name") == hub.client_name]
    assert len(mine) == 1, mine
    return mine[0]


async def resynced(subscription: Subscription) -> None:
    """The subscription's next item is the hub's ask to re-read the database."""
    assert await asyncio.wait_for(subscription.queue.get(), WAIT_SECONDS) is None


async def test_subscribes_only_what_a_stream_watches(hub: EventHub, redis_client: aioredis.Redis) -> None:
    watched, unwatched = str(uuid.uuid4()), str(uuid.uuid4())
    subscription = hub.subscribe(watched)
    # Subscribed once Redis has confirmed it, which is when the stream is asked to re-read the database.
    await resynced(subscription)
    assert await subscribers(redis_client, hub.prefix + watched) == 1
    # Nothing is subscribed for a job no stream here watches, nor by pattern.
    assert await subscribers(redis_client, hub.prefix + unwatched) == 0
    connection = await hub_connection(redis_client, hub)
    assert (connection["sub"], connection["psub"]) == ("1", "0")

    await redis_client.publish(hub.prefix + unwatched, payload(1, "queued"))
    await redis_client.publish(hub.prefix + watched, payload(1, "running"))
    live = await subscription.next(WAIT_SECONDS)
    assert live is not None and live["seq"] == 1 and live["type"] == "status"
    assert subscription.queue.empty()


async def test_a_channel_is_dropped_after_its_last_stream(hub: EventHub, redis_client: aioredis.Redis) -> None:
    job = str(uuid.uuid4())
    channel = hub.prefix + job
    first, second = hub.subscribe(job), hub.subscribe(job)

    async def subscribed(count: int) -> bool:
        return await subscribers(redis_client, channel) == count

    await until(lambda: subscribed(1), "the subscribe")
    # One subscription on Redis serves both streams, and its confirmation resyncs both.
    await resynced(first)
    await resynced(second)
    hub.unsubscribe(first)
    await asyncio.sleep(IDLE_SECONDS * 1.5)
    assert await subscribers(redis_client, channel) == 1, "a stream still watches it"
    await redis_client.publish(channel, payload(4, "running"))
    live = await second.next(WAIT_SECONDS)
    assert live is not None and live["seq"] == 4
    assert first.queue.empty()

    hub.unsubscribe(second)
    await until(lambda: subscribed(0), "the unsubscribe")
    assert hub.channels == set()


async def test_resubscribes_and_resyncs_after_losing_redis(hub: EventHub, redis_client: aioredis.Redis) -> None:
    job = str(uuid.uuid4())
    channel = hub.prefix + job
    subscription = hub.subscribe(job)
    await resynced(subscription)
    # Redis drops the hub's connection: whatever was published meanwhile is only in the database.
    await redis_client.client_kill_filter(_type="pubsub")
    await resynced(subscription)
    assert hub.connected
    assert await subscribers(redis_client, channel) == 1
    await redis_client.publish(channel, payload(2, "running"))
    live = await subscription.next(WAIT_SECONDS)
    assert live is not None and live["seq"] == 2


async def test_stop_ends_a_listener_that_swallowed_its_cancellation(monkeypatch: pytest.MonkeyPatch) -> None:
    # What redis-py does when a cancellation lands at the wrong moment (redis/redis-py#2028): the listener
    # goes on as if nothing had happened. An app's shutdown then waited on it for ever.
    swallowed: list[bool] = []

    async def listen(self: EventHub) -> None:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed.append(True)

    monkeypatch.setattr(EventHub, "_listen", listen)
    events = EventHub(REDIS_URL, "wgan-test-stop:events:")
    await events.start()
    await asyncio.sleep(0)
    stopping = asyncio.ensure_future(events.stop())
    # Not wait_for: its own cancellation of a stop() that hangs would end the listener and hide the hang.
    await asyncio.wait({stopping}, timeout=10)
    try:
        assert stopping.done(), "stop() still waits on a listener that swallowed one cancellation"
        assert swallowed == [True]
    finally:
        stopping.cancel()
