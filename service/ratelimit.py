"""Request budgets per owner (and failed sign-ins per client address) over a moving one-minute window,
shared by every API process through Redis when the deployment has one.

A moving window counts the requests of the last 60 seconds at every moment, so no burst of twice the
budget fits across a window boundary, as it does with fixed windows. It is a log per subject: a Redis
sorted set of request times, trimmed and counted atomically by one script. (The `limits` library's
moving window would do the same, but its Redis extra requires redis<8, older than this project's.)

When Redis cannot be reached the budgets are not enforced: serving beats refusing every caller, and
the API logs each time it lets a request through that way.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque

import redis

from service.errors import RateLimited
from service.settings import Settings

log = logging.getLogger(__name__)
WINDOW_SECONDS = 60
MAX_LOCAL_SUBJECTS = 10_000

# Drop what left the window; if room remains, log this request and answer -1, else the oldest time
# still in the window (the caller may retry once it leaves).
_HIT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]) + 1)
  return '-1'
end
return redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]
"""


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.prefix = f"{settings.redis_prefix}:rate"
        self._redis = (
            redis.Redis.from_url(settings.events_url, socket_timeout=1.0, socket_connect_timeout=1.0)
            if settings.events_url
            else None
        )
        self._script = self._redis.register_script(_HIT) if self._redis is not None else None
        # The embedded default's: one API process, so its own memory is shared enough.
        self._local: dict[str, deque[float]] = {}
        # Subjects seen over budget, and when their oldest request leaves the window (refuse_if_known_spent).
        self._spent: dict[str, float] = {}
        self._lock = threading.Lock()

    def check(self, bucket: str, subject: str, per_minute: int, *, remember_spent: bool = False) -> None:
        """Spend one of `subject`'s `per_minute` requests in `bucket`; RateLimited (429) once spent. With
        `remember_spent`, a spent budget is also remembered here, for refuse_if_known_spent."""
        if per_minute <= 0:
            return
        now = time.time()
        key = f"{self.prefix}:{bucket}:{subject}"
        oldest = self._local_hit(key, now, per_minute) if self._script is None else None
        if self._script is not None:
            try:
                answer = self._script(keys=[key], args=[now, WINDOW_SECONDS, per_minute, uuid.uuid4().hex])
            except redis.RedisError as exc:
                log.warning("rate limit unavailable (%s); letting the request through", exc)
                return
            oldest = None if float(answer) < 0 else float(answer)
        if oldest is not None:
            if remember_spent:
                self._remember_spent(key, oldest + WINDOW_SECONDS, now)
            retry_after = max(1, int(oldest + WINDOW_SECONDS - now) + 1)
            raise RateLimited(f"more than {per_minute} {bucket} requests a minute", retry_after)

    def asks_redis(self, per_minute: int) -> bool:
        """Whether check() with this budget makes a round trip (a budget shared through Redis); else it
        counts in this process's memory, or there is no budget at all."""
        return per_minute > 0 and self._script is not None

    def refuse_if_known_spent(self, bucket: str, subject: str, per_minute: int) -> None:
        """RateLimited if this process last saw `subject`'s budget in `bucket` spent and the window has not
        moved on since; no Redis round trip. For budgets checked on the unhappy path only (failed
        sign-ins), so that the happy path costs nothing: another process learns of a spent budget at the
        subject's next spend there."""
        if per_minute <= 0:
            return
        key = f"{self.prefix}:{bucket}:{subject}"
        now = time.time()
        with self._lock:
            frees_at = self._spent.get(key)
            if frees_at is not None and frees_at <= now:
                del self._spent[key]
                frees_at = None
        if frees_at is not None:
            raise RateLimited(f"more than {per_minute} {bucket} requests a minute", max(1, int(frees_at - now) + 1))

    def _remember_spent(self, key: str, frees_at: float, now: float) -> None:
        with self._lock:
            if len(self._spent) >= MAX_LOCAL_SUBJECTS:
                self._spent = {k: t for k, t in self._spent.items() if t > now}
            if len(self._spent) < MAX_LOCAL_SUBJECTS:
                self._spent[key] = frees_at

    def _local_hit(self, key: str, now: float, per_minute: int) -> float | None:
        with self._lock:
            if len(self._local) > MAX_LOCAL_SUBJECTS:
                # Subjects that have been quiet for a window hold nothing worth keeping.
                self._local = {k: v for k, v in self._local.items() if v and v[-1] > now - WINDOW_SECONDS}
            log_ = self._local.setdefault(key, deque())
            while log_ and log_[0] <= now - WINDOW_SECONDS:
                log_.popleft()
            if len(log_) >= per_minute:
                return log_[0]
            log_.append(now)
            return None

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()
