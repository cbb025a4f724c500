"""Deferred broker sends: off the caller's thread, in hand-over order, none lost to another's failure."""

from __future__ import annotations

import threading

from service.dispatch import SerialSender


def test_sends_run_in_the_order_handed_over_on_one_other_thread_and_close_drains_them() -> None:
    sender = SerialSender()
    ran: list[tuple[int, str]] = []

    def send(index: int) -> None:
        if index == 3:
            raise RuntimeError("a broken send")
        ran.append((index, threading.current_thread().name))

    for index in range(50):
        sender.defer(lambda index=index: send(index))
    sender.close()
    assert [index for index, _ in ran] == [i for i in range(50) if i != 3]
    assert {name for _, name in ran} == {"broker-sends"}
    # Usable again after a close: a new thread on the next hand-over.
    sender.defer(lambda: ran.append((50, threading.current_thread().name)))
    sender.close()
    assert ran[-1] == (50, "broker-sends")
