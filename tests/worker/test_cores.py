"""Torch threads that follow the host's free cores: fewer when other processes keep the cores busy, more
when they leave."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
import torch

from worker.cores import CpuShare, ThreadGovernor, threads_for


def test_free_cores_round_to_threads_between_one_and_the_threads_it_started_with() -> None:
    assert threads_for(0.0, 2) == 1
    assert threads_for(1.4, 2) == 1
    assert threads_for(1.5, 2) == 2
    assert threads_for(2.0, 2) == 2
    assert threads_for(7.9, 4) == 4


@pytest.mark.alone  # another test running beside it keeps "free" cores busy
@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="the kernel's CPU counters are Linux's")
def test_cores_kept_busy_by_other_processes_are_not_counted_free() -> None:
    limit = len(os.sched_getaffinity(0))
    if limit > 8:
        pytest.skip("this test keeps every core busy, and there are too many of them")
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(limit)]
    try:
        time.sleep(1.0)  # the burners are up and running
        share = CpuShare()
        time.sleep(1.5)
        busy = share.cores()
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    assert busy is not None
    assert threads_for(busy, limit) == 1, busy
    # And once they are gone, the cores are this process's to take again.
    time.sleep(0.5)
    share = CpuShare()
    time.sleep(1.0)
    free = share.cores()
    assert free is not None and free > limit - 0.75, free


class Told(CpuShare):
    """Free cores as a test says they are."""

    def __init__(self, values: list[float]) -> None:
        super().__init__()
        self.values = values

    def cores(self) -> float | None:
        return self.values.pop(0) if self.values else None


def test_the_governor_sets_threads_on_the_training_thread_as_the_free_cores_change() -> None:
    seen: list[int] = []

    def train() -> None:
        governor = ThreadGovernor(2, every=0.01, share=Told([1.0, 1.1, 2.0]))
        seen.append(torch.get_num_threads())
        for _ in range(3):
            time.sleep(0.02)
            governor.tick()
            seen.append(torch.get_num_threads())

    trainer = threading.Thread(target=train)
    trainer.start()
    trainer.join()
    assert seen == [2, 1, 1, 2]


def test_a_governor_told_not_to_adapt_keeps_its_threads() -> None:
    before = torch.get_num_threads()
    try:
        governor = ThreadGovernor(2, every=0.0)
        assert governor.share is None
        governor.tick()
        assert governor.threads == torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
