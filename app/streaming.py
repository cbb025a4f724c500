"""Live job events: one Redis pub/sub connection per API process, fanned out to SSE streams."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from service.events import decode

log = logging.getLogger(__name__)
QUEUE_LIMIT = 1024
RECONNECT_MIN_SECONDS = 0.2
RECONNECT_MAX_SECONDS = 5.0


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
    def __init__(self, url: str, channel_prefix: str) -> None:
        self.url = url
        self.prefix = channel_prefix
        self.connected = False
        self._subscriptions: dict[str, set[Subscription]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.url:
            self._task = asyncio.create_task(self._listen(), name="event-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def subscribe(self, job_id: str) -> Subscription:
        subscription = Subscription(job_id)
        self._subscriptions.setdefault(job_id, set()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self._subscriptions.get(subscription.job_id)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscriptions[subscription.job_id]

    def _resync_all(self) -> None:
        for subscribers in self._subscriptions.values():
            for subscription in subscribers:
                subscription.offer(None)

    def _dispatch(self, channel: str, payload: bytes | str) -> None:
        job_id = channel.removeprefix(self.prefix)
        subscribers = self._subscriptions.get(job_id)
        if not subscribers:
            return
        try:
            message = decode(payload if isinstance(payload, str) else payload.decode())
        except (ValueError, TypeError):
            log.warning("ignoring a malformed event on %s", channel)
            return
        for subscription in subscribers:
            subscription.offer(message)

    async def _listen(self) -> None:
        delay = RECONNECT_MIN_SECONDS
        while True:
            client = aioredis.Redis.from_url(self.url, decode_responses=True)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.psubscribe(f"{self.prefix}*")
                    self.connected = True
                    delay = RECONNECT_MIN_SECONDS
                    # Anything published while we were away is in the database: streams re-read it.
                    self._resync_all()
                    async for message in pubsub.listen():
                        if message.get("type") == "pmessage":
                            self._dispatch(message["channel"], message["data"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self.connected:
                    log.warning("lost the event connection to Redis (%s); streams fall back to polling", exc)
                self.connected = False
            finally:
                self.connected = False
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)
