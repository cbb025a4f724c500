"""Slots of one kind whose leases this process keeps for a moment after their work ends, so that the same
owner's next request here takes one back without a round trip to Redis.

A sample request took its owner's slot from Redis on a pool thread (a Lua script) and gave it back on a
generator thread (ZREM) before its answer went out: two round trips, four wake-ups of other threads and
processes, and a generator thread waiting on a socket, for every request (0.25 ms of a pool thread's CPU
and ~0.15 ms of a generator thread's, on a request whose whole overhead beside its pass is ~2 ms; bench
sampling). A client that has its answer usually asks again at once. So a lease given back here is kept
for `linger` seconds, and the owner's next request in this process takes it, with no I/O; a lease kept
longer than that goes back to Redis from a thread of its own.

The bound still holds everywhere: every request in progress holds a lease that Redis counts, so no owner
ever has more than its limit in progress across all API processes. What changes is that a lease kept
here counts for `linger` seconds after its request ended: another API process can refuse the same owner
for that long when the owner is at its limit. A lease is taken back only within `reuse_for` seconds of
when Redis granted it, so that what is left of its time to live outlasts any request that takes it: one
in use for long is replaced, never lapses under a request. A lease let through while Redis was down
(service.slots.is_shared) is never kept: nothing counts it. `linger` 0 gives every lease back at once,
as before.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from service.slots import Slots, is_shared

# The longest a request refused by Redis waits for this process's own leases on their way back there (one
# round trip each) before it is told the owner is at its limit.
RETURNING_WAIT_SECONDS = 1.0


@dataclass
class _Kept:
    lease: str
    taken: float  # monotonic time it was taken from Redis (its expiry there is ttl after)
    idle_since: float  # monotonic time its last request gave it back


class LingeringSlots:
    def __init__(
        self,
        slots: Slots,
        kind: str,
        ttl: float,
        linger: float,
        reuse_for: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.slots = slots
        self.kind = kind
        self.ttl = ttl
        self.linger = linger
        self.reuse_for = reuse_for
        self._clock = clock
        self._taken: dict[str, float] = {}  # lease → when taken from Redis, for leases held by requests
        self._kept: dict[str, list[_Kept]] = {}  # owner → its idle leases, the most recently given back last
        # owner → leases the sweeper has taken out of keeping and not yet given back: Redis still counts them.
        self._returning: dict[str, int] = {}
        # owner → when its last give-back from _returning ended (time.monotonic()), the oldest first: a
        # request refused by Redis asks again if one ended after it asked. Only the last RETURNING_WAIT_SECONDS
        # matter to any request, so older ones are forgotten.
        self._given_back_at: OrderedDict[str, float] = OrderedDict()
        self._changed = threading.Condition()
        self._closed = False
        self._sweeper: threading.Thread | None = None

    def acquire(self, owner_id: str, limit: int) -> str | None:
        """A lease for one of the owner's requests: one kept here if there is one still young enough, else
        one from Redis; None when the owner already holds `limit` leases across every API process."""
        with self._changed:
            reused, stale = self._take_kept(owner_id)
        # Stale leases go back before Redis is asked: each still counts there against this owner's limit.
        self._return(owner_id, stale)
        if reused is not None:
            return reused
        taken = self._clock()
        deadline = time.monotonic() + RETURNING_WAIT_SECONDS
        while True:
            asked = time.monotonic()
            lease = self.slots.acquire(self.kind, owner_id, limit, self.ttl)
            # Refused while leases of the owner's were on their way back from here, Redis may have counted
            # them: the owner was not at its limit, Redis was only behind by their round trips. Asked again
            # once they are back.
            if lease is not None or not self._gave_back_since(owner_id, asked, deadline):
                break
            if time.monotonic() >= deadline:
                # The owner's leases keep coming back and going out again: it is at its limit after all.
                break
        if lease is not None:
            with self._changed:
                self._taken[lease] = taken
        return lease

    def acquire_kept(self, owner_id: str) -> str | None:
        """A lease kept here for the owner and young enough to take back, held from now on; None when there
        is none. Never any I/O, so it may be called on an event loop: a lease too old to take back stays
        kept, for acquire() or the sweeper to give back."""
        with self._changed:
            kept = self._kept.get(owner_id)
            if not kept or not self._young(kept[-1]):
                return None
            lease = self._hold(kept.pop())
            self._forget_if_empty(owner_id)
            return lease

    def release(self, owner_id: str, lease: str) -> None:
        """The request holding `lease` has ended: kept for the owner's next request, or given back now
        (when lingering is off or this process is closing). No I/O when kept."""
        with self._changed:
            taken = self._taken.pop(lease, None)
            if taken is None:
                return  # no request holds it: given back already (kept, or back in Redis)
            if self.linger > 0 and not self._closed and is_shared(lease):
                # The sweeper needs waking only when it waits for a first lease; one kept after others is
                # due after them.
                first = not self._kept
                self._kept.setdefault(owner_id, []).append(_Kept(lease, taken, self._clock()))
                self._start_sweeper()
                if first:
                    self._changed.notify()
                return
        self.slots.release(self.kind, owner_id, lease)

    @property
    def kept(self) -> int:
        """Leases kept idle here, not yet given back."""
        with self._changed:
            return sum(len(leases) for leases in self._kept.values())

    @property
    def returning(self) -> int:
        """Leases taken out of keeping and not yet back in Redis (it still counts them)."""
        with self._changed:
            return sum(self._returning.values())

    def close(self) -> None:
        """Every kept lease given back; from now on a lease is given back as its request ends."""
        with self._changed:
            self._closed = True
            everything, self._kept = self._kept, {}
            self._changed.notify()
            sweeper = self._sweeper
        for owner_id, leases in everything.items():
            self._give_back(owner_id, leases)
        if sweeper is not None:
            sweeper.join()

    def _take_kept(self, owner_id: str) -> tuple[str | None, list[_Kept]]:
        """The owner's most recently kept lease young enough to take back (held from now on), and those too
        old to, taken out of keeping to be given back (called holding the lock)."""
        kept, stale = self._kept.get(owner_id, []), []
        reused = None
        while kept and reused is None:
            candidate = kept.pop()
            if self._young(candidate):
                reused = self._hold(candidate)
            else:
                stale.append(candidate)
        self._forget_if_empty(owner_id)
        self._mark_returning(owner_id, stale)
        return reused, stale

    def _gave_back_since(self, owner_id: str, asked: float, deadline: float) -> bool:
        """Whether a give-back of the owner's leases from here ended after `asked` (time.monotonic()), once
        those now on their way back are back (waited for until `deadline`). One that ended between Redis's
        refusal and this call counts too: it may have been on its way as Redis counted, and _returning no
        longer shows it."""
        with self._changed:
            while self._returning.get(owner_id) and time.monotonic() < deadline:
                self._changed.wait(max(0.0, deadline - time.monotonic()))
            return self._given_back_at.get(owner_id, -math.inf) >= asked

    def _young(self, kept: _Kept) -> bool:
        return self._clock() - kept.taken < self.reuse_for

    def _hold(self, kept: _Kept) -> str:
        self._taken[kept.lease] = kept.taken
        return kept.lease

    def _forget_if_empty(self, owner_id: str) -> None:
        if not self._kept.get(owner_id, True):
            del self._kept[owner_id]

    def _mark_returning(self, owner_id: str, leases: list[_Kept]) -> None:
        """`leases`, just taken out of keeping, are on their way back to Redis (called holding the lock)."""
        if leases:
            self._returning[owner_id] = self._returning.get(owner_id, 0) + len(leases)

    def _return(self, owner_id: str, leases: list[_Kept]) -> None:
        """Gives back leases marked returning, then tells whoever waits for them (_gave_back_since)."""
        if not leases:
            return
        try:
            self._give_back(owner_id, leases)
        finally:
            with self._changed:
                left = self._returning[owner_id] - len(leases)
                if left:
                    self._returning[owner_id] = left
                else:
                    del self._returning[owner_id]
                self._gave_back(owner_id)
                self._changed.notify_all()

    def _gave_back(self, owner_id: str) -> None:
        """Notes that a give-back of the owner's leases has just ended (called holding the lock)."""
        now = time.monotonic()
        self._given_back_at[owner_id] = now
        self._given_back_at.move_to_end(owner_id)
        while next(iter(self._given_back_at.values())) < now - RETURNING_WAIT_SECONDS:
            self._given_back_at.popitem(last=False)

    def _give_back(self, owner_id: str, leases: list[_Kept]) -> None:
        for kept in leases:
            self.slots.release(self.kind, owner_id, kept.lease)

    def _start_sweeper(self) -> None:
        # Started with the first lease kept: a process that never samples runs no thread for it.
        if self._sweeper is None:
            self._sweeper = threading.Thread(target=self._sweep, name=f"{self.kind}-slots", daemon=True)
            self._sweeper.start()

    def _sweep(self) -> None:
        """Gives back each kept lease once it has been idle for `linger`, sleeping until the next is due."""
        while True:
            with self._changed:
                due = self._due()
                while not due and not self._closed:
                    oldest = min((kept.idle_since for leases in self._kept.values() for kept in leases), default=None)
                    self._changed.wait(None if oldest is None else max(0.0, oldest + self.linger - self._clock()))
                    due = self._due()
                if self._closed:
                    return
            for owner_id, leases in due.items():
                self._return(owner_id, leases)

    def _due(self) -> dict[str, list[_Kept]]:
        """The kept leases idle for `linger` or more, taken out of keeping (called holding the lock)."""
        cutoff = self._clock() - self.linger
        due: dict[str, list[_Kept]] = {}
        for owner_id in list(self._kept):
            leases = self._kept[owner_id]
            expired = [kept for kept in leases if kept.idle_since <= cutoff]
            if expired:
                due[owner_id] = expired
                self._mark_returning(owner_id, expired)
                self._kept[owner_id] = [kept for kept in leases if kept.idle_since > cutoff]
                self._forget_if_empty(owner_id)
        return due
