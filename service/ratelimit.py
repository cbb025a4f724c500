"""Per-key request budgets (fixed one-minute windows), shared through Redis when there is one."""

from __future__ import annotations

import logging
import threading
import time

import redis

from service.errors import RateLimited
from service.settings import Settings

log = logging.getLogger(__name__)
WINDOW_SECONDS = 60


class MemoryCounter:
    """For the embedded default (one API process, no Redis)."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, ttl: int) -> int:
        with self._lock:
            window = key.rsplit(":", 1)[-1]
            # Forget windows that have ended, so the table stays small.
            self._counts = {k: v for k, v in self._counts.items() if k.rsplit(":", 1)[-1] >= window}
            self._counts[key] = self._counts.get(key, 0) + 1
            return self._counts[key]


class RedisCounter:
    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)

    def hit(self, key: str, ttl: int) -> int:
        pipe = self.client.pipeline()
        pipe.incr(key)
        pipe.expire(key, ttl)
        count, _ = pipe.execute()
        return int(count)


class RateLimiter:
    """Per-key budgets in fixed one-minute windows: in Redis when the deployment has one (shared by every
    API process), else in this process's memory (the embedded default runs one)."""

    def __init__(self, settings: Settings) -> None:
        self.prefix = f"{settings.redis_prefix}:rate"
        self._counter: MemoryCounter | RedisCounter = (
            RedisCounter(settings.events_url) if settings.events_url else MemoryCounter()
        )

    def check(self, bucket: str, key_id: str, per_minute: int) -> None:
        """Count one request; raise RateLimited (429) once `per_minute` is spent in this window."""
        if per_minute <= 0:
            return
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        name = f"{self.prefix}:{bucket}:{key_id}:{window}"
        try:
            count = self._counter.hit(name, WINDOW_SECONDS * 2)
        except redis.RedisError as exc:
            # Without Redis the limit cannot be shared; serving beats refusing everyone.
            log.warning("rate limit unavailable (%s); letting the request through", exc)
            return
        if count > per_minute:
            retry_after = max(1, int((window + 1) * WINDOW_SECONDS - now) + 1)
            raise RateLimited(f"more than {per_minute} {bucket} requests a minute for this key", retry_after)
