"""The sampling gate: at most its slots at once, the rest served in arrival order, a waiter free to leave."""

from __future__ import annotations

import threading
import time

import pytest

from app.compute_gate import ComputeGate
from wgan.sampling import SamplingStopped


def test_no_more_than_its_slots_run_at_once_and_everyone_is_served() -> None:
    gate = ComputeGate(2)
    inside, most, done = 0, 0, 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal inside, most, done
        with gate.held():
            with lock:
                inside += 1
                most = max(most, inside)
            time.sleep(0.01)
            with lock:
                inside -= 1
                done += 1

    threads = [threading.Thread(target=work) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert (most, done, gate.waiting) == (2, 12, 0)


def test_waiters_are_served_in_the_order_they_came() -> None:
    gate = ComputeGate(1)
    order: list[int] = []
    release = threading.Event()

    def first() -> None:
        with gate.held():
            release.wait(10)

    def later(index: int) -> None:
        with gate.held():
            order.append(index)

    holder = threading.Thread(target=first)
    holder.start()
    waiters = []
    for index in range(5):
        waiters.append(threading.Thread(target=later, args=(index,)))
        waiters[-1].start()
        while gate.waiting < index + 1:  # each one in line before the next arrives
            time.sleep(0.001)
    release.set()
    for thread in [holder, *waiters]:
        thread.join(10)
    assert order == [0, 1, 2, 3, 4]


def test_a_waiter_whose_client_has_gone_leaves_the_line_and_takes_no_slot() -> None:
    gate = ComputeGate(1)
    gone = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with gate.held():
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    while gate.waiting == 0 and not _taken(gate):
        time.sleep(0.001)
    failure: list[BaseException] = []

    def wait_in_line() -> None:
        try:
            with gate.held(gone.is_set):
                pass
        except SamplingStopped as exc:
            failure.append(exc)

    waiter = threading.Thread(target=wait_in_line)
    waiter.start()
    while gate.waiting == 0:
        time.sleep(0.001)
    gone.set()
    waiter.join(10)
    assert len(failure) == 1 and gate.waiting == 0
    release.set()
    holder.join(10)
    # The slot it never took is still there: the next comer goes straight in.
    with gate.held(lambda: pytest.fail("should not have waited")):
        pass


def _taken(gate: ComputeGate) -> bool:
    # The holder has its slot once no slot is free; read through a held() that cannot wait.
    stop = threading.Event()
    stop.set()
    try:
        with gate.held(stop.is_set):
            return False
    except SamplingStopped:
        return True
