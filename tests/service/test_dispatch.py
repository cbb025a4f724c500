"""Deferred broker sends: off the caller's thread, in hand-over order, what piled up during a send sent
together in the next, none lost to another's failure."""

from __future__ import annotations

import threading
import time

from service.dispatch import SerialSender

WAIT_SECONDS = 10


def test_sends_run_in_the_order_handed_over_on_one_other_thread_and_close_drains_them() -> None:
    ran: list[tuple[int, str]] = []

    def send(batch: list[int]) -> None:
        if 3 in batch:
            raise RuntimeError("a broken send")
        ran.extend((index, threading.current_thread().name) for index in batch)

    sender = SerialSender(send, max_batch=1)
    for index in range(50):
        sender.defer(index)
    sender.close()
    assert [index for index, _ in ran] == [i for i in range(50) if i != 3]
    assert {name for _, name in ran} == {"broker-sends"}
    # Usable again after a close: a new thread on the next hand-over.
    sender.defer(50)
    sender.close()
    assert ran[-1] == (50, "broker-sends")


def test_what_is_handed_over_during_a_send_goes_out_together_in_the_next_bounded_by_max_batch() -> None:
    first_started, release = threading.Event(), threading.Event()
    batches: list[list[int]] = []

    def send(batch: list[int]) -> None:
        batches.append(batch)
        if len(batches) == 1:
            first_started.set()
            assert release.wait(WAIT_SECONDS)

    sender = SerialSender(send, max_batch=4)
    sender.defer(0)
    assert first_started.wait(WAIT_SECONDS)
    # Handed over while the first send is under way: they wait, then go in batches of at most 4.
    for index in range(1, 11):
        sender.defer(index)
    release.set()
    sender.close()
    assert batches == [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]


def test_a_failed_batch_does_not_stop_the_sends_after_it() -> None:
    started, release = threading.Event(), threading.Event()
    sent: list[list[str]] = []

    def send(batch: list[str]) -> None:
        if batch == ["hold"]:
            started.set()
            assert release.wait(WAIT_SECONDS)
            return
        if "bad" in batch:
            raise RuntimeError("a broken send")
        sent.append(batch)

    sender: SerialSender[str] = SerialSender(send, max_batch=2)
    sender.defer("hold")
    assert started.wait(WAIT_SECONDS)
    for item in ("a", "bad", "b", "c"):
        sender.defer(item)
    release.set()
    sender.close()
    assert sent == [["b", "c"]]


def test_a_send_soon_after_another_waits_for_more_to_join_it_and_close_cuts_the_wait_short() -> None:
    sent: list[list[int]] = []
    first = threading.Event()

    def send(batch: list[int]) -> None:
        sent.append(batch)
        first.set()

    # A linger far longer than the test: only close() can end the second wait in time.
    sender = SerialSender(send, linger=60)
    sender.defer(0)  # after a quiet spell: sent at once
    assert first.wait(WAIT_SECONDS)
    for index in (1, 2, 3):
        sender.defer(index)  # soon after a send: they wait together
    started = time.monotonic()
    sender.close()
    assert time.monotonic() - started < WAIT_SECONDS
    assert sent == [[0], [1, 2, 3]]
