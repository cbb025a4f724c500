"""The sampling gate: at most its slots at once, on its own few threads, the rest served in arrival order,
a waiter free to leave."""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable

import pytest

from app.compute_gate import ComputeGate
from tests.support.gates import occupied
from wgan.sampling import SamplingStopped


def _wait_for(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.001)


def _in_line(gate: ComputeGate, count: int) -> bool:
    return gate.waiting == count


def _waiter(
    gate: ComputeGate,
    work: Callable[[], object],
    failure: list[BaseException],
    should_stop: Callable[[], bool] | None = None,
) -> threading.Thread:
    """A thread asking `gate` to run `work`, once it is in line (all slots must be taken); a SamplingStopped
    it meets lands in `failure`."""

    def ask() -> None:
        try:
            gate.run(work, should_stop)
        except SamplingStopped as exc:
            failure.append(exc)

    waiter = threading.Thread(target=ask)
    waiter.start()
    _wait_for(functools.partial(_in_line, gate, 1))
    return waiter


def test_no_more_than_its_slots_run_at_once_and_everyone_is_served() -> None:
    gate = ComputeGate(2)
    inside, most, done = 0, 0, 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal inside, most, done
        with lock:
            inside += 1
            most = max(most, inside)
        time.sleep(0.01)
        with lock:
            inside -= 1
            done += 1

    threads = [threading.Thread(target=gate.run, args=(work,)) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert (most, done, gate.waiting) == (2, 12, 0)


def test_the_work_runs_on_the_gates_own_threads_and_its_answer_comes_back() -> None:
    # Passes on a few long-lived threads keep their memory warm (the module's docstring says why); the
    # caller gets the result, or the exception, as if it had run the work itself.
    gate = ComputeGate(2)
    # Thread objects, not idents: a thread that has ended may hand its ident to one started later.
    callers: set[threading.Thread] = set()
    ran_on: set[threading.Thread] = set()
    lock = threading.Lock()

    def ask(index: int) -> None:
        with lock:
            callers.add(threading.current_thread())

        def work() -> int:
            with lock:
                ran_on.add(threading.current_thread())
            time.sleep(0.002)
            return index * index

        assert gate.run(work) == index * index

    threads = [threading.Thread(target=ask, args=(index,)) for index in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(callers) == 16 and 1 <= len(ran_on) <= 2 and not ran_on & callers

    def fails() -> None:
        raise ValueError("the generator does not fit")

    with pytest.raises(ValueError, match="does not fit"):
        gate.run(fails)
    assert gate.waiting == 0


def test_waiters_are_served_in_the_order_they_came() -> None:
    gate = ComputeGate(1)
    order: list[int] = []
    waiters = []
    with occupied(gate):
        for index in range(5):
            waiters.append(threading.Thread(target=gate.run, args=(functools.partial(order.append, index),)))
            waiters[-1].start()
            _wait_for(functools.partial(_in_line, gate, index + 1))  # each one in line before the next comes
    for thread in waiters:
        thread.join(10)
    assert order == [0, 1, 2, 3, 4]


def test_a_waiter_whose_client_has_gone_leaves_the_line_and_takes_no_slot() -> None:
    gate = ComputeGate(1)
    gone = threading.Event()
    failure: list[BaseException] = []
    ran: list[bool] = []

    with occupied(gate):
        waiter = _waiter(gate, lambda: ran.append(True), failure, gone.is_set)
        gone.set()
        waiter.join(10)
        assert len(failure) == 1 and "waited in line" in str(failure[0]) and gate.waiting == 0
    # Its work never ran, and the slot it never took is still there: the next comer goes straight in.
    assert gate.run(lambda: "straight in", lambda: pytest.fail("should not have waited")) == "straight in"
    assert ran == []


def test_work_under_way_is_not_abandoned_when_its_client_goes() -> None:
    # Once on a thread, the work itself asks should_stop between chunks; the gate waits for its end.
    gate = ComputeGate(1)
    gone = threading.Event()

    def work() -> str:
        gone.set()
        time.sleep(3 * 0.05)
        return "finished"

    assert gate.run(work, gone.is_set) == "finished"


def test_a_closed_gate_drops_those_in_line() -> None:
    gate = ComputeGate(1)
    failure: list[BaseException] = []

    with occupied(gate):
        waiter = _waiter(gate, lambda: None, failure)
        gate.close()
        waiter.join(10)
    assert len(failure) == 1 and "shutting down" in str(failure[0]) and gate.waiting == 0


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="thread affinity is Linux's")
@pytest.mark.parametrize(("pin", "beyond_cores"), [(True, 0), (False, 0), (True, 1)])
def test_pinned_each_thread_runs_on_a_core_of_its_own_and_the_process_keeps_its_own(
    pin: bool, beyond_cores: int
) -> None:
    allowed = sorted(os.sched_getaffinity(0))
    slots = len(allowed) + beyond_cores
    gate = ComputeGate(slots, pin=pin)
    # Every thread holds one piece of work until all have one, so each thread reports its own affinity.
    together = threading.Barrier(slots)

    def where() -> frozenset[int]:
        together.wait(10)
        return frozenset(os.sched_getaffinity(0))

    try:
        futures = [gate.submit(where) for _ in range(slots)]
        cores = sorted(sorted(future.result(10)) for future in futures)
    finally:
        gate.close()
    if pin and not beyond_cores:
        assert cores == [[core] for core in allowed]
    else:
        # Not pinned, or more threads than cores: every thread may run anywhere, as the scheduler balances.
        assert cores == [allowed] * slots
    assert sorted(os.sched_getaffinity(0)) == allowed, "the process and the asking thread keep every core"


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="thread affinity is Linux's")
def test_a_thread_that_cannot_be_pinned_still_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(pid: int, cores: object) -> None:
        raise OSError(22, "Invalid argument")  # as when the process's cpuset has narrowed since

    monkeypatch.setattr(os, "sched_setaffinity", refused)
    gate = ComputeGate(1, pin=True)
    try:
        assert gate.run(lambda: 42) == 42
        assert gate.run(lambda: 43) == 43
    finally:
        gate.close()


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="thread affinity is Linux's")
@pytest.mark.parametrize(("threads", "pinned"), [(1, True), (2, False)])
def test_the_api_pins_its_gate_only_where_a_pass_runs_on_one_thread(threads: int, pinned: bool) -> None:
    from app.main import create_app
    from tests.support.service import runtime, settings

    allowed = sorted(os.sched_getaffinity(0))
    app = create_app(settings().model_copy(update={"api_torch_threads": threads, "sample_concurrency": 1}), runtime())
    gate = app.state.samplers.gate
    try:
        where = sorted(gate.run(lambda: os.sched_getaffinity(0)))
    finally:
        gate.close()
        app.state.sample_slots.close()
    # Threads a pass starts (torch's, onnxruntime's) inherit its affinity: several on one core would crowd it.
    assert where == ([allowed[0]] if pinned else allowed)
