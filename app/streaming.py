"""Live job events: one Redis pub/sub connection per API process, fanned out to SSE streams."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from service.events import decode

log = logging.getLogger(__name__)
QUEUE_LIMIT = 1024
RECONNECT_MIN_SECONDS = 0.2
RECONNECT_MAX_SECONDS = 5.0
# How long a channel no stream here watches any more stays subscribed, at most.
IDLE_SECONDS = 1.0
# How long stop() waits on the listener before cancelling it again.
STOP_RETRY_SECONDS = 0.5
# The hub's connection as Redis's CLIENT LIST names it, so an operator can tell the API's event
# listeners from the workers' and brokers' connections.
CLIENT_NAME = "wgan-api-events"


@dataclass(eq=False)
class Subscription:
    job_id: str
    queue: asyncio.Queue[dict[str, Any] | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))

    def offer(self, message: dict[str, Any] | None) -> None:
        """Queue a message; None asks the stream to re-read the database (a message may be lost)."""
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            # A stream that fell this far behind catches up from the database instead.
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(None)

    async def next(self, timeout: float) -> dict[str, Any] | None:
        """The next live message, or None on timeout or when the stream should re-read."""
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None


class EventHub:
    """One pub/sub connection per API process, subscribed to the channels of the streams open here.

    Only those channels: subscribed to every job's, each API process received (and decoded the channel
    of) every event of every job, a submission's included, with no one watching (bench request-cost).
    A channel is subscribed when its first stream opens and dropped, within IDLE_SECONDS, after its
    last closes. Its streams re-read the database once Redis confirms the subscription, so nothing
    published between their first read and the confirmation is missed.
    """

    def __init__(self, url: str, channel_prefix: str, *, client_name: str = CLIENT_NAME) -> None:
        self.url = url
        self.prefix = channel_prefix
        self.client_name = client_name
        self.connected = False
        self._subscriptions: dict[str, set[Subscription]] = {}
        self._pubsub: PubSub | None = None
        self._dropped: set[str] = set()
        self._sending: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.url:
            self._task = asyncio.create_task(self._listen(), name="event-hub")

    async def stop(self) -> None:
        if self._task is None:
            return
        # A cancellation that lands inside redis-py at the wrong moment can be swallowed there
        # (redis/redis-py#2028, #2551): the listener goes on, and a stop() that cancelled once waited for
        # ever (an app's shutdown hung in the test suite). Cancelled until it ends.
        while not self._task.done():
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=STOP_RETRY_SECONDS)
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def subscribe(self, key: str) -> Subscription:
        """A subscription to the events announced under `key` (a job's id, an experiment's channel)."""
        subscription = Subscription(key)
        subscribers = self._subscriptions.setdefault(key, set())
        first = not subscribers
        subscribers.add(subscription)
        self._dropped.discard(key)
        if first and self._pubsub is not None:
            # Sent on its own: the caller registers and unregisters without awaiting, so a stream cancelled
            # at any point leaves nothing behind.
            task = asyncio.create_task(self._send_subscribe(self._pubsub, key))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        return subscription

    async def _send_subscribe(self, pubsub: PubSub, key: str) -> None:
        try:
            await pubsub.subscribe(self.prefix + key)
        except (RedisError, OSError) as exc:
            # The listener finds the connection broken too, reconnects and subscribes every key.
            log.warning("could not subscribe to %s: %s", key, exc)

    def unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self._subscriptions.get(subscription.job_id)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscriptions[subscription.job_id]
                # Dropped by the listener: this runs where awaiting is not possible (a cancelled stream).
                self._dropped.add(subscription.job_id)

    @property
    def channels(self) -> set[str]:
        """The keys this hub is subscribed to on Redis, or about to be."""
        return set(self._subscriptions)

    def _resync(self, subscribers: set[Subscription] | None) -> None:
        for subscription in subscribers or ():
            subscription.offer(None)

    def _dispatch(self, channel: str, payload: bytes | str) -> None:
        subscribers = self._subscriptions.get(channel.removeprefix(self.prefix))
        if not subscribers:
            return
        try:
            message = decode(payload if isinstance(payload, str) else payload.decode())
        except (ValueError, TypeError):
            log.warning("ignoring a malformed event on %s", channel)
            return
        for subscription in subscribers:
            subscription.offer(message)

    async def _drop_unwatched(self, pubsub: PubSub) -> None:
        dropped = [key for key in self._dropped if key not in self._subscriptions]
        self._dropped.clear()
        if dropped:
            await pubsub.unsubscribe(*(self.prefix + key for key in dropped))

    async def _listen(self) -> None:
        delay = RECONNECT_MIN_SECONDS
        while True:
            client = aioredis.Redis.from_url(self.url, decode_responses=True, client_name=self.client_name)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.connect()
                    # Set before subscribing what is wanted now: a stream opening from here on subscribes
                    # its own key, so none falls between the two.
                    self._pubsub = pubsub
                    self._dropped.clear()
                    if self._subscriptions:
                        await pubsub.subscribe(*(self.prefix + key for key in self._subscriptions))
                    self.connected = True
                    delay = RECONNECT_MIN_SECONDS
                    while True:
                        await self._drop_unwatched(pubsub)
                        message = await pubsub.get_message(timeout=IDLE_SECONDS)
                        if message is None:
                            continue
                        if message["type"] == "message":
                            self._dispatch(message["channel"], message["data"])
                        elif message["type"] == "subscribe":
                            # Anything announced before this was committed first: the streams re-read it.
                            self._resync(self._subscriptions.get(message["channel"].removeprefix(self.prefix)))
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self.connected:
                    log.warning("lost the event connection to Redis (%s); streams fall back to polling", exc)
            finally:
                self.connected = False
                self._pubsub = None
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)
