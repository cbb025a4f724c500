"""Sample requests for one generator that wait in line together share its passes.

A pass runs the generator on chunks of exactly SAMPLE_CHUNK rows, the last one padded (wgan.sampling): a
request for 4 samples costs a whole chunk, as one for 64 does. When a request reaches a core, it takes
along the requests for the same generator still in line whose rows fit in its last chunk's padding, and
computes them in that chunk (wgan.sampling.generate_together). Each gets its own bytes, bit for bit what it
would get alone, and the first's pass costs no more. Nobody waits for company: a request that finds a free
core starts at once, so passes are shared exactly when there is a line, which is when sharing pays, on a
GPU as on a CPU.

Each request puts one drain of its own in the gate's line (app.compute_gate), so the gate's order and
bound hold: a request is computed at its own place in the line or earlier, as a rider, never later, and
a drain whose request rode along earlier is taken out of the line. The shared chunk is computed first and
its riders answered at once: a rider never waits for the rest of a long request, nor shares its fate.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.compute_gate import ComputeGate
from app.telemetry import SAMPLE_REQUESTS_SHARED
from wgan.sampling import Sampler, SamplingStopped, generate_together, last_chunk_start, padding

log = logging.getLogger(__name__)


class LeftTheLine(SamplingStopped):
    """The request left the line (its client went, its deadline passed, the API shut down) before any pass
    took it: nothing was computed for it and nothing was done on its behalf (its `done` was not called)."""


@dataclass(eq=False)
class Ask:
    """One request's part in a pass."""

    sampler: Sampler
    rows: int
    latents: Callable[[], np.ndarray]  # its latent rows (made on the gate's thread)
    render: Callable[[np.ndarray], bytes]  # its answer from its samples
    should_stop: Callable[[], bool]  # its client gone or its deadline passed
    done: Callable[[], None]  # called once, on the gate's thread, just before a pass answers it (or fails)
    answer: Future[bytes] = field(default_factory=Future)
    drain: Future[None] | None = None  # its own place in the gate's line


class SampleBatches:
    """The line of sample requests, by generator. `together` off: every request has a pass of its own."""

    def __init__(self, gate: ComputeGate, together: bool = True) -> None:
        self.gate = gate
        self.together = together
        # Requests not yet taken by a pass, in arrival order, by generator (its identity: a generator the
        # cache loads again is another one, and the requests each hold theirs).
        self._waiting: dict[int, list[Ask]] = {}
        self._lock = threading.Lock()

    async def answer(self, ask: Ask, leave: asyncio.Event, deadline: float) -> bytes:
        """`ask`'s bytes, from a pass of its own or one it shares. LeftTheLine once `leave` is set or the
        monotonic `deadline` passes before a pass has taken it (or the gate closes first); taken, it is
        answered, even if late. What its pass raises (SamplingStopped between chunks included) comes here."""
        with self._lock:
            # In line and its drain queued under one lock: a pass that takes it as a rider finds its drain.
            try:
                ask.drain = self.gate.submit(lambda: self._drain(ask))
            except SamplingStopped:
                raise LeftTheLine("the API is shutting down") from None
            self._waiting.setdefault(id(ask.sampler), []).append(ask)
        # Dropped from the line when the gate closes: the request is told, not left waiting to its deadline.
        ask.drain.add_done_callback(lambda drain: self._closed(ask, drain))
        answer = asyncio.wrap_future(ask.answer)
        leaving = asyncio.ensure_future(leave.wait())
        awaited: set[asyncio.Future[Any]] = {answer, leaving}
        try:
            done, _ = await asyncio.wait(
                awaited, timeout=max(0.0, deadline - time.monotonic()), return_when=asyncio.FIRST_COMPLETED
            )
            if answer not in done:
                if self._withdraw(ask):
                    ask.drain.cancel()
                    raise LeftTheLine("waited in line for a free core")
                await asyncio.wait({answer})  # in a pass already: it runs to its end
            return answer.result()
        finally:
            leaving.cancel()

    def _closed(self, ask: Ask, drain: Future[None]) -> None:
        if drain.cancelled() and self._withdraw(ask):
            ask.answer.set_exception(LeftTheLine("the API is shutting down"))

    def _withdraw(self, ask: Ask) -> bool:
        """Out of the line if no pass has taken it yet (True); False once one has."""
        with self._lock:
            return self._remove(ask)

    def _remove(self, ask: Ask) -> bool:
        key = id(ask.sampler)
        line = self._waiting.get(key, [])
        if ask not in line:
            return False
        line.remove(ask)
        if not line:
            del self._waiting[key]
        return True

    def _take(self, first: Ask) -> list[Ask]:
        """`first`, if no pass has taken it, and after it the requests for its generator whose rows fit in
        its padding, in arrival order (one too big stays in line, at its own place)."""
        with self._lock:
            if not self._remove(first):
                return []
            taken, room = [first], padding(first.rows) if self.together else 0
            for ask in list(self._waiting.get(id(first.sampler), [])):
                if ask.rows <= room:
                    self._remove(ask)
                    taken.append(ask)
                    room -= ask.rows
        return taken

    def _drain(self, first: Ask) -> None:
        taken = self._take(first)
        for rider in taken[1:]:
            # Answered here: its own place in the line is given up (the gate counts it out).
            assert rider.drain is not None
            rider.drain.cancel()
        if len(taken) > 1:
            SAMPLE_REQUESTS_SHARED.inc(len(taken) - 1)
        unanswered = list(taken)
        try:
            _run(taken, unanswered)
        finally:
            for ask in unanswered:  # what the pass could not answer still hears, and gives its slot back
                _answer(ask, RuntimeError("the sampling pass failed"))

    @property
    def waiting(self) -> int:
        """Requests in line that no pass has taken yet."""
        with self._lock:
            return sum(len(line) for line in self._waiting.values())


def _run(taken: list[Ask], unanswered: list[Ask]) -> None:
    """The pass: the last chunk of the first request, which its riders share, computed first and the riders
    answered at once; then the first's chunks before it (the same bits in either order: each chunk is
    computed on its own)."""
    live: list[Ask] = []
    latents: list[np.ndarray] = []
    for ask in taken:
        try:
            latents.append(ask.latents())
        except Exception as exc:  # its own failure: the others' pass goes on
            _finish(ask, exc, unanswered)
        else:
            live.append(ask)
    if not live:
        return
    first, own = live[0], latents[0]
    split = last_chunk_start(first.rows) if len(live) > 1 else 0
    try:
        # Not started when every request in it would stop (asked before each chunk).
        shared = generate_together(
            first.sampler, [own[split:], *latents[1:]], lambda: all(ask.should_stop() for ask in live)
        )
    except Exception as exc:
        for ask in live:
            _finish(ask, exc, unanswered)
        return
    for rider, rows in zip(live[1:], shared[1:], strict=True):
        _finish(rider, _rendered(rider, rows), unanswered)
    if not split:
        _finish(first, _rendered(first, shared[0]), unanswered)
        return
    try:
        # Its own chunks, under its own stop alone: its riders have their answers.
        (head,) = generate_together(first.sampler, [own[:split]], first.should_stop)
    except Exception as exc:
        _finish(first, exc, unanswered)
    else:
        _finish(first, _rendered(first, np.concatenate([head, shared[0]])), unanswered)


def _finish(ask: Ask, body: bytes | Exception, unanswered: list[Ask]) -> None:
    _answer(ask, body)
    unanswered.remove(ask)


def _rendered(ask: Ask, rows: np.ndarray) -> bytes | Exception:
    try:
        return ask.render(rows)
    except Exception as exc:  # its own failure
        return exc


def _answer(ask: Ask, body: bytes | Exception) -> None:
    # Its slot first: a client answered may ask again at once, and must find its slot free.
    try:
        ask.done()
    except Exception:
        log.exception("a sample request's slot could not be given back (its lease expires on its own)")
    if isinstance(body, Exception):
        ask.answer.set_exception(body)
    else:
        ask.answer.set_result(body)
