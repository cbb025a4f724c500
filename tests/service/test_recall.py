"""service.recall: a read kept for `keep` seconds, for its own key only, and never more than `capacity`."""

from __future__ import annotations

from service.recall import Recall


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_value_is_served_for_keep_seconds_after_it_was_put_and_not_after() -> None:
    clock = Clock()
    recall: Recall[str, int] = Recall(keep=0.1, capacity=8, clock=clock)
    assert recall.get("a") is None
    recall.put("a", 1)
    clock.now += 0.099
    assert recall.get("a") == 1
    assert recall.get("b") is None  # only ever for the key that put it
    # Served again, it is not kept any longer: only a new read (a put) extends it.
    clock.now += 0.001
    assert recall.get("a") is None
    recall.put("a", 2)
    assert recall.get("a") == 2
    assert (recall.hits, recall.misses) == (2, 3)


def test_keep_zero_keeps_nothing() -> None:
    recall: Recall[str, int] = Recall(keep=0, capacity=8)
    recall.put("a", 1)
    assert recall.get("a") is None and len(recall) == 0


def test_at_capacity_a_new_key_waits_for_room_and_expired_entries_make_it() -> None:
    clock = Clock()
    recall: Recall[str, int] = Recall(keep=1.0, capacity=2, clock=clock)
    recall.put("a", 1)
    clock.now += 0.5
    recall.put("b", 2)
    recall.put("c", 3)  # full of live entries: not kept
    assert recall.get("c") is None and len(recall) == 2
    recall.put("a", 10)  # a key already kept is still refreshed
    assert recall.get("a") == 10
    # Once "b" has expired, the next put drops it and there is room again.
    clock.now += 1.0
    recall.put("c", 3)
    assert recall.get("c") == 3 and recall.get("b") is None
    assert len(recall) == 1  # "a" (refreshed at 100.5) expired too, and went with "b"
