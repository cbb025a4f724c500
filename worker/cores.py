"""Torch threads that follow the cores a training worker can have: fewer when other processes keep the
host's cores busy, more again when they leave.

A worker's OpenMP threads spin a little before they sleep (wgan_service.openmp), which is what makes it
fast alone; two processes spinning on the same cores steal each other's time slices (0.35x of alone,
measured in bench.threads). On one thread nothing spins, so a worker that shares its cores trains on
fewer threads. What it can have: its own CPU use plus the host's idle time over the last interval, as the
kernel counts them (/proc/stat), rounded to whole cores and never above the threads it started with.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

log = logging.getLogger(__name__)

PROC_STAT = Path("/proc/stat")
# /proc/stat's aggregate line: user nice system idle iowait ... in clock ticks; idle and iowait are idle.
_IDLE_FIELDS = (3, 4)


def _idle_seconds(stat: Path) -> float | None:
    """Seconds all the host's cores have been idle since boot; None where the kernel does not say."""
    try:
        with stat.open() as file:
            fields = file.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    return sum(int(fields[1 + i]) for i in _IDLE_FIELDS) / os.sysconf("SC_CLK_TCK")


def _usable_limit() -> int:
    # The cores this process may run on; /proc/stat counts the whole host, which may have more.
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass
class Sample:
    wall: float
    own: float
    idle: float


class CpuShare:
    """The cores this process could have used over the interval since the last reading."""

    def __init__(self, stat: Path = PROC_STAT, clock: Callable[[], float] = time.monotonic) -> None:
        self.stat, self.clock = stat, clock
        self.limit = _usable_limit()
        self._last = self._read()

    def _read(self) -> Sample | None:
        idle = _idle_seconds(self.stat)
        return None if idle is None else Sample(self.clock(), time.process_time(), idle)

    def cores(self) -> float | None:
        """Own CPU time plus the host's idle time per second of the interval, at most the cores this
        process may use; None without /proc/stat or before any time has passed."""
        now = self._read()
        last, self._last = self._last, now
        if now is None or last is None or now.wall <= last.wall:
            return None
        wall = now.wall - last.wall
        return min(float(self.limit), ((now.own - last.own) + (now.idle - last.idle)) / wall)


def threads_for(cores: float, most: int) -> int:
    """Whole cores, rounded half up, at least one and at most `most`."""
    return max(1, min(most, math.floor(cores + 0.5)))


class ThreadGovernor:
    """Sets torch's thread count for a training run on the thread that trains (OpenMP keeps the count per
    calling thread), then revisits it every `every` seconds from that thread's hooks."""

    def __init__(
        self, most: int, every: float, share: CpuShare | None = None, context: Mapping[str, object] | None = None
    ) -> None:
        self.most, self.every = most, every
        adapting = every > 0 and most > 1  # one thread has nothing to give back
        self.share = (share or CpuShare()) if adapting else None
        self.context = context or {}
        self.threads = most
        self._due = time.monotonic() + every
        torch.set_num_threads(most)

    def tick(self) -> None:
        if self.share is None or time.monotonic() < self._due:
            return
        self._due = time.monotonic() + self.every
        cores = self.share.cores()
        if cores is None:
            return
        wanted = threads_for(cores, self.most)
        if wanted != self.threads:
            log.info(
                "torch threads %d -> %d: %.1f of the host's cores free for training",
                self.threads,
                wanted,
                cores,
                extra=self.context,
            )
            torch.set_num_threads(wanted)
            self.threads = wanted
