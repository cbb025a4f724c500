"""Leases on a bounded number of concurrent things per owner (open event streams, sample requests in
progress): in Redis when the deployment has one, so every API process counts against the same bound,
else in this process. A lease expires unless renewed, so a process that dies holds none for long."""

from __future__ import annotations

import logging
import threading
import time
import uuid

import redis

from service.settings import Settings

log = logging.getLogger(__name__)

# Atomically: forget expired leases, then add this one if fewer than the limit remain.
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  return 1
end
return 0
"""


# A lease let through while Redis could not be reached: nothing counts it anywhere.
UNSHARED = "unshared-"


def is_shared(lease: str) -> bool:
    """Whether Redis counts `lease` against its owner's bound (not one let through in an outage)."""
    return not lease.startswith(UNSHARED)


class Slots:
    def __init__(self, settings: Settings) -> None:
        self.prefix = f"{settings.redis_prefix}:slots"
        self._redis = (
            redis.Redis.from_url(settings.events_url, socket_timeout=1.0, socket_connect_timeout=1.0)
            if settings.events_url
            else None
        )
        self._acquire = self._redis.register_script(_ACQUIRE) if self._redis is not None else None
        self._local: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()

    def acquire(self, kind: str, owner_id: str, limit: int, ttl: float) -> str | None:
        """A lease id, or None when the owner already holds `limit` live leases of `kind`."""
        key, lease, now = f"{self.prefix}:{kind}:{owner_id}", uuid.uuid4().hex, time.time()
        if self._acquire is None:
            with self._lock:
                held = {k: v for k, v in self._local.get(key, {}).items() if v > now}
                if len(held) >= limit:
                    return None
                held[lease] = now + ttl
                self._local[key] = held
            return lease
        try:
            granted = self._acquire(keys=[key], args=[now, limit, now + ttl, lease, int(ttl) + 1])
        except redis.RedisError as exc:
            # Without Redis the bound cannot be shared; serving beats refusing every owner.
            log.warning("concurrency slots unavailable (%s); letting the request through", exc)
            return UNSHARED + lease
        return lease if granted else None

    def renew(self, kind: str, owner_id: str, lease: str, ttl: float) -> None:
        key, expiry = f"{self.prefix}:{kind}:{owner_id}", time.time() + ttl
        if self._redis is None:
            with self._lock:
                self._local.setdefault(key, {})[lease] = expiry
            return
        try:
            self._redis.zadd(key, {lease: expiry}, xx=True)
        except redis.RedisError as exc:
            log.warning("could not renew a %s lease: %s", kind, exc)

    def release(self, kind: str, owner_id: str, lease: str) -> None:
        key = f"{self.prefix}:{kind}:{owner_id}"
        if self._redis is None:
            with self._lock:
                self._local.get(key, {}).pop(lease, None)
            return
        try:
            self._redis.zrem(key, lease)
        except redis.RedisError as exc:
            log.warning("could not release a %s lease (it expires on its own): %s", kind, exc)

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()
