"""Sampling slots that stay with their process for a moment after their request, on the real Redis: the
same owner's next request takes one back with no round trip, the bound holds across processes, and what
is kept goes back on time."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis

from service.lingering_slots import RETURNING_WAIT_SECONDS, LingeringSlots
from service.models import new_id
from service.slots import Slots, is_shared
from tests.conftest import wait_for
from tests.support.service import settings

KIND = "sampling"
TTL = 120.0
REUSE = 60.0
# Long enough that a stalled test host does not see a kept lease go back before it looks.
LINGER = 1.0


class CountingSlots(Slots):
    """The real slots in Redis, counting the round trips made for them."""

    def __init__(self) -> None:
        super().__init__(settings())
        self.trips = 0

    def acquire(self, kind: str, owner_id: str, limit: int, ttl: float) -> str | None:
        self.trips += 1
        return super().acquire(kind, owner_id, limit, ttl)

    def release(self, kind: str, owner_id: str, lease: str) -> None:
        self.trips += 1
        super().release(kind, owner_id, lease)


@pytest.fixture
def slots() -> Iterator[CountingSlots]:
    made = CountingSlots()
    yield made
    made.close()


def held(owner_id: str) -> set[str]:
    """The owner's leases as Redis counts them."""
    client = redis.Redis.from_url(settings().events_url)
    try:
        members = client.zrange(f"{settings().redis_prefix}:slots:{KIND}:{owner_id}", 0, -1)
    finally:
        client.close()
    return {member.decode() for member in members}


def test_a_lease_given_back_is_taken_again_by_its_owner_with_no_round_trip(slots: CountingSlots) -> None:
    keeper = LingeringSlots(slots, KIND, TTL, 60, REUSE)
    owner, other = new_id(), new_id()
    try:
        lease = keeper.acquire(owner, 1)
        assert lease is not None and held(owner) == {lease}
        trips = slots.trips
        keeper.release(owner, lease)
        # Kept: still counted in Redis, and nothing was sent to give it back.
        assert slots.trips == trips and held(owner) == {lease} and keeper.kept == 1
        assert keeper.acquire(owner, 1) == lease
        assert slots.trips == trips and keeper.kept == 0
        # Another owner never gets it: its lease comes from Redis.
        theirs = keeper.acquire(other, 1)
        assert theirs is not None and theirs != lease and slots.trips == trips + 1
        keeper.release(owner, lease)
        keeper.release(other, theirs)
    finally:
        keeper.close()
    assert held(owner) == held(other) == set()


def test_a_kept_lease_goes_back_once_idle_for_the_linger(slots: CountingSlots) -> None:
    keeper = LingeringSlots(slots, KIND, TTL, LINGER, REUSE)
    owner = new_id()
    try:
        lease = keeper.acquire(owner, 1)
        assert lease is not None
        given_back = time.monotonic()
        keeper.release(owner, lease)
        assert held(owner) == {lease}
        wait_for(lambda: not held(owner), 10, "the kept lease to go back to Redis")
        assert time.monotonic() - given_back >= LINGER and keeper.kept == 0
        # The next request of the owner takes a new one from Redis.
        again = keeper.acquire(owner, 1)
        assert again is not None and again != lease
        keeper.release(owner, again)
    finally:
        keeper.close()


def test_the_owners_bound_holds_across_processes_kept_leases_included(slots: CountingSlots) -> None:
    here = LingeringSlots(slots, KIND, TTL, LINGER, REUSE)
    there = LingeringSlots(Slots(settings()), KIND, TTL, LINGER, REUSE)
    owner = new_id()
    try:
        leases = [here.acquire(owner, 2), here.acquire(owner, 2)]
        assert None not in leases and there.acquire(owner, 2) is None
        # One request ends here: its slot is kept for the owner's next request here, so it still counts there.
        here.release(owner, leases[0])  # type: ignore[arg-type]
        assert there.acquire(owner, 2) is None
        # Idle for the linger, it goes back, and the other process may take it.
        wait_for(lambda: len(held(owner)) == 1, 10, "the kept lease to go back")
        theirs = there.acquire(owner, 2)
        assert theirs is not None
        assert here.acquire(owner, 2) is None
        there.release(owner, theirs)
        here.release(owner, leases[1])  # type: ignore[arg-type]
    finally:
        here.close()
        there.close()
    assert held(owner) == set()


def test_a_lease_older_than_its_reuse_window_is_replaced_not_taken_again(slots: CountingSlots) -> None:
    now = [1000.0]
    keeper = LingeringSlots(slots, KIND, ttl=10, linger=1e9, reuse_for=5, clock=lambda: now[0])
    owner = new_id()
    try:
        old = keeper.acquire(owner, 1)
        assert old is not None
        now[0] += 4
        keeper.release(owner, old)
        assert keeper.acquire(owner, 1) == old  # 4 s into 10: taken again
        keeper.release(owner, old)
        now[0] += 2
        # 6 s into 10: its expiry in Redis is near, so it goes back and a new one is taken, within the limit.
        new = keeper.acquire(owner, 1)
        assert new is not None and new != old and held(owner) == {new}
        keeper.release(owner, new)
    finally:
        keeper.close()


def test_acquire_kept_takes_only_a_young_kept_lease_and_never_asks_redis(slots: CountingSlots) -> None:
    now = [1000.0]
    keeper = LingeringSlots(slots, KIND, ttl=10, linger=1e9, reuse_for=5, clock=lambda: now[0])
    owner = new_id()
    try:
        assert keeper.acquire_kept(owner) is None  # nothing kept: no lease, and no round trip for one
        assert slots.trips == 0
        lease = keeper.acquire(owner, 1)
        assert lease is not None
        keeper.release(owner, lease)
        trips = slots.trips
        assert keeper.acquire_kept(owner) == lease and keeper.kept == 0
        assert keeper.acquire_kept(owner) is None  # held by a request now: not handed out twice
        keeper.release(owner, lease)
        assert keeper.acquire_kept(new_id()) is None  # only ever for its owner
        now[0] += 6
        # Past its reuse window: not taken, and still kept (and counted), for acquire() to give back.
        assert keeper.acquire_kept(owner) is None and keeper.kept == 1 and held(owner) == {lease}
        assert slots.trips == trips
        new = keeper.acquire(owner, 1)
        assert new is not None and new != lease and held(owner) == {new}
        keeper.release(owner, new)
    finally:
        keeper.close()
    assert held(owner) == set()


class SlowReturns(CountingSlots):
    """Slots whose give-backs wait for the test: a lease on its way back, still counted by Redis."""

    def __init__(self) -> None:
        super().__init__()
        self.returning = threading.Event()
        self.let_go = threading.Event()

    def release(self, kind: str, owner_id: str, lease: str) -> None:
        self.returning.set()
        assert self.let_go.wait(10)
        super().release(kind, owner_id, lease)


@contextmanager
def on_its_way_back(slow: SlowReturns, keeper: LingeringSlots, owner: str) -> Iterator[str]:
    """One of the owner's leases, taken and given back: idle for the linger, the sweeper takes it out of
    keeping and gives it back, and `slow` holds it there, still counted by Redis, until let go. Everything
    is given back at the end."""
    try:
        lease = keeper.acquire(owner, 1)
        assert lease is not None
        keeper.release(owner, lease)
        assert slow.returning.wait(10) and keeper.kept == 0 and keeper.returning == 1 and held(owner) == {lease}
        yield lease
    finally:
        slow.let_go.set()
        keeper.close()
        slow.close()
    assert held(owner) == set()


def test_a_request_refused_while_its_process_gives_a_lease_back_waits_for_it_and_is_served() -> None:
    slow = SlowReturns()
    keeper = LingeringSlots(slow, KIND, TTL, 0.05, REUSE)
    owner = new_id()
    with on_its_way_back(slow, keeper, owner) as lease:
        asked: list[str | None] = []
        waiting = threading.Thread(target=lambda: asked.append(keeper.acquire(owner, 1)))
        waiting.start()
        waiting.join(0.3)
        assert waiting.is_alive()  # refused by Redis, it waits for the lease on its way back
        slow.let_go.set()
        waiting.join(10)
        # Served: the owner was never at its limit, Redis was one round trip behind.
        assert asked[0] is not None and asked[0] != lease and held(owner) == {asked[0]}
        keeper.release(owner, asked[0])


class BackBeforeTheRefusalIsRead(SlowReturns):
    """Slots whose first refusal reaches its request only after the give-back on its way meanwhile has
    ended, and the keeper has seen it end: the order a busy host put them in (bench sampling, one 429 in
    the ungated API)."""

    def __init__(self) -> None:
        super().__init__()
        self.keeper: LingeringSlots | None = None
        self.refused = 0

    def acquire(self, kind: str, owner_id: str, limit: int, ttl: float) -> str | None:
        lease = super().acquire(kind, owner_id, limit, ttl)
        if lease is None:
            self.refused += 1
            if self.refused == 1:
                assert self.keeper is not None
                self.let_go.set()
                wait_for(lambda: self.keeper is not None and self.keeper.returning == 0, 10, "the give-back to end")
        return lease


def test_a_request_refused_as_its_process_gave_a_lease_back_asks_again_even_once_it_is_back() -> None:
    slow = BackBeforeTheRefusalIsRead()
    keeper = slow.keeper = LingeringSlots(slow, KIND, TTL, 0.05, REUSE)
    owner = new_id()
    with on_its_way_back(slow, keeper, owner):
        # Redis refuses (it still counts the lease on its way back); by the time the request reads that
        # refusal the lease is back and nothing shows it was on its way, but the request asks again.
        asked = keeper.acquire(owner, 1)
        assert slow.refused == 1 and asked is not None and held(owner) == {asked}
        keeper.release(owner, asked)


def test_a_request_refused_with_nothing_of_its_owner_on_its_way_back_is_refused_at_once(
    slots: CountingSlots,
) -> None:
    keeper = LingeringSlots(slots, KIND, TTL, 0.05, REUSE)
    other = LingeringSlots(slots, KIND, TTL, 0.05, REUSE)
    owner, stranger = new_id(), new_id()
    try:
        mine = other.acquire(owner, 1)
        theirs = keeper.acquire(stranger, 1)
        assert mine is not None and theirs is not None
        keeper.release(stranger, theirs)
        wait_for(lambda: held(stranger) == set(), 10, "the stranger's lease to go back")
        trips = slots.trips
        # At its limit in another process, with nothing of its own on its way back from here (another owner's
        # give-back is not its own): one ask, refused at once.
        assert keeper.acquire(owner, 1) is None and slots.trips == trips + 1
        other.release(owner, mine)
    finally:
        keeper.close()
        other.close()
    assert held(owner) == set()


class RefusedForOneThread(CountingSlots):
    """Slots that refuse every ask from one thread (its owner at its limit elsewhere), a round trip each."""

    def __init__(self, refused: threading.Thread) -> None:
        super().__init__()
        self.refused = refused
        self.refusals = 0

    def acquire(self, kind: str, owner_id: str, limit: int, ttl: float) -> str | None:
        if threading.current_thread() is not self.refused:
            return super().acquire(kind, owner_id, limit, ttl)
        self.refusals += 1
        time.sleep(0.02)
        return None


def test_a_refused_request_stops_asking_again_after_its_wait_though_the_owners_leases_keep_coming_back() -> None:
    slots = RefusedForOneThread(threading.current_thread())
    # Leases idle past a short linger go back to Redis all the time, each give-back a reason to ask again.
    keeper = LingeringSlots(slots, KIND, TTL, 0.002, REUSE)
    owner = new_id()
    churning = threading.Event()
    churning.set()

    def churn() -> None:
        while churning.is_set():
            lease = keeper.acquire(owner, 100)
            assert lease is not None
            keeper.release(owner, lease)
            time.sleep(0.004)  # past the linger: the sweeper gives it back, several times a round trip

    churner = threading.Thread(target=churn)
    churner.start()
    # Without a bound the refused request would ask for as long as the give-backs go on: they stop, in time.
    stop = threading.Timer(10 * RETURNING_WAIT_SECONDS, churning.clear)
    stop.start()
    try:
        # Refused until the deadline, then told the owner is at its limit, while the give-backs go on.
        started = time.monotonic()
        assert keeper.acquire(owner, 1) is None
        waited = time.monotonic() - started
        assert churning.is_set() and slots.refusals > 1
        assert RETURNING_WAIT_SECONDS <= waited < 5 * RETURNING_WAIT_SECONDS
    finally:
        stop.cancel()
        churning.clear()
        churner.join(10)
        keeper.close()
        slots.close()
    assert held(owner) == set()


def test_no_linger_and_closing_give_leases_back_at_once(slots: CountingSlots) -> None:
    owner = new_id()
    at_once = LingeringSlots(slots, KIND, TTL, 0, REUSE)
    lease = at_once.acquire(owner, 1)
    assert lease is not None
    at_once.release(owner, lease)
    assert held(owner) == set() and at_once.kept == 0
    at_once.close()
    keeper = LingeringSlots(slots, KIND, TTL, 60, REUSE)
    first, second = keeper.acquire(owner, 2), keeper.acquire(owner, 2)
    assert first is not None and second is not None
    keeper.release(owner, first)
    keeper.close()
    # What was kept went back with the close; a request still in progress gives its slot back as it ends.
    assert held(owner) == {second}
    keeper.release(owner, second)
    assert held(owner) == set() and keeper.kept == 0


def test_a_lease_given_back_twice_is_kept_once_and_still_counted(slots: CountingSlots) -> None:
    keeper = LingeringSlots(slots, KIND, TTL, 60, REUSE)
    owner = new_id()
    try:
        lease = keeper.acquire(owner, 1)
        assert lease is not None
        keeper.release(owner, lease)
        keeper.release(owner, lease)
        assert keeper.kept == 1 and held(owner) == {lease}
        assert keeper.acquire(owner, 1) == lease
        keeper.release(owner, lease)
    finally:
        keeper.close()
    assert held(owner) == set()


def test_a_lease_let_through_while_redis_is_down_is_never_kept() -> None:
    unreachable = Slots(settings().model_copy(update={"events_url": "redis://127.0.0.1:1/0"}))
    keeper = LingeringSlots(unreachable, KIND, TTL, 60, REUSE)
    owner = new_id()
    try:
        lease = keeper.acquire(owner, 1)
        assert lease is not None and not is_shared(lease), "served, though nothing counts it"
        keeper.release(owner, lease)
        # Nothing counts it, so it must not outlive its request: the next one asks Redis again.
        assert keeper.kept == 0
        again = keeper.acquire(owner, 1)
        assert again is not None and again != lease
        keeper.release(owner, again)
    finally:
        keeper.close()
        unreachable.close()
