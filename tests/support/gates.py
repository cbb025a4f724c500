"""Holding the sampling gate's slots from a test."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from app.compute_gate import ComputeGate


@contextmanager
def occupied(gate: ComputeGate) -> Iterator[None]:
    """Every slot of `gate` busy until the block ends."""
    release = threading.Event()
    started = threading.Barrier(gate.slots + 1)

    def hold() -> None:
        started.wait(10)
        release.wait(10)

    holders = [threading.Thread(target=gate.run, args=(hold,)) for _ in range(gate.slots)]
    for holder in holders:
        holder.start()
    started.wait(10)
    try:
        yield
    finally:
        release.set()
        for holder in holders:
            holder.join(10)
