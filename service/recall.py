"""What a request read, served again for a moment to the same caller's next requests in this process.

A busy client asks again as soon as it has its answer: 16 clients sampling one generator ask about 60
times a second, and every request read the same key, job and checkpoint rows on a pool thread (a thread
hop, a pooled connection, a Postgres round trip: ~0.6 ms of CPU on a request whose whole cost beside its
pass is ~2 ms; bench sampling). Kept here for `keep` seconds after it was read, what one request read
answers the next ones with no I/O at all.

The price is that a change is seen up to `keep` seconds late in this process: a revoked key still reads
for that long, as a request already under way when it was revoked does. So `keep` is short (a tenth of a
second by default, at most a second) and what is kept is only ever served to the key that read it.
Entries are few and short-lived; `capacity` bounds them whatever the callers do.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Recall(Generic[K, V]):
    """Values by key, each for `keep` seconds after it was put, `capacity` at most at once. `keep` 0
    keeps nothing."""

    def __init__(self, keep: float, capacity: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.keep = keep
        self.capacity = capacity
        self._clock = clock
        # Oldest first: a put moves its key to the end, so what has expired is always at the front.
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: K) -> V | None:
        """The value put for `key` less than `keep` seconds ago, or None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] <= self._clock():
                self.misses += 1
                return None
            self.hits += 1
            return entry[1]

    def put(self, key: K, value: V) -> None:
        """`value` for `key` from now on, for `keep` seconds; not kept when `capacity` live entries are."""
        if self.keep <= 0:
            return
        with self._lock:
            # Read under the lock, so that entries go in in the order of their expiry.
            now = self._clock()
            while self._entries and next(iter(self._entries.values()))[0] <= now:
                self._entries.popitem(last=False)
            if key not in self._entries and len(self._entries) >= self.capacity:
                return
            self._entries[key] = (now + self.keep, value)
            self._entries.move_to_end(key)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
