"""Sample requests for one generator that wait in line together share its passes.

A pass runs the generator on chunks of exactly SAMPLE_CHUNK rows, the last one padded (wgan.sampling): a
request for 4 samples costs a whole chunk, as one for 64 does. When several requests for the same
generator are in line, the first to reach a core takes along those still waiting whose rows fit in its
last chunk's padding, and computes them in the same pass (wgan.sampling.generate_together). Each gets
its own bytes, bit for bit what it would get alone, and the first's pass costs no more. Nobody waits for
company: a request that finds a free core starts at once, so passes are shared exactly when there is a
line, which is when sharing pays, on a GPU as on a CPU.

Each request puts one drain in the gate's line (app.compute_gate), so the gate's order and bound hold as
before: a drain takes the oldest request still waiting for its generator and those that fit beside it,
and answers them all; a drain whose request another took has nothing left to do, and costs nothing.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.compute_gate import ComputeGate
from app.telemetry import SAMPLE_REQUESTS_SHARED
from wgan.sampling import Sampler, SamplingStopped, generate_together, padding


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
        answered, even if late. What a pass raises (SamplingStopped between chunks included) comes here."""
        key = id(ask.sampler)
        with self._lock:
            self._waiting.setdefault(key, []).append(ask)
        try:
            drain = self.gate.submit(functools.partial(self._drain, key))
        except SamplingStopped:
            self._withdraw(key, ask)
            raise LeftTheLine("the API is shutting down") from None
        # Dropped from the line when the gate closes: the request is told, not left waiting to its deadline.
        drain.add_done_callback(functools.partial(self._closed, key, ask))
        answer = asyncio.wrap_future(ask.answer)
        leaving = asyncio.ensure_future(leave.wait())
        awaited: set[asyncio.Future[Any]] = {answer, leaving}
        try:
            done, _ = await asyncio.wait(
                awaited, timeout=max(0.0, deadline - time.monotonic()), return_when=asyncio.FIRST_COMPLETED
            )
            if answer not in done:
                if self._withdraw(key, ask):
                    # One drain fewer is needed: take one out of the line if none has started.
                    self.gate.cancel(drain)
                    raise LeftTheLine("waited in line for a free core")
                await asyncio.wait({answer})  # in a pass already: it runs to its end
            return answer.result()
        finally:
            leaving.cancel()

    def _closed(self, key: int, ask: Ask, drain: Future[None]) -> None:
        if drain.cancelled() and self._withdraw(key, ask) and ask.answer.set_running_or_notify_cancel():
            ask.answer.set_exception(LeftTheLine("the API is shutting down"))

    def _withdraw(self, key: int, ask: Ask) -> bool:
        """Out of the line if no pass has taken it yet (True); False once one has."""
        with self._lock:
            line = self._waiting.get(key, [])
            if ask not in line:
                return False
            line.remove(ask)
            if not line:
                del self._waiting[key]
            return True

    def _take(self, key: int) -> list[Ask]:
        """The oldest request waiting for this generator, and after it those whose rows fit in its padding
        (in arrival order, skipping any too big: it stays first for the next drain)."""
        with self._lock:
            line = self._waiting.get(key)
            if not line:
                return []
            first, *others = line
            taken, kept = [first], []
            room = padding(first.rows) if self.together else 0
            for ask in others:
                if ask.rows <= room:
                    taken.append(ask)
                    room -= ask.rows
                else:
                    kept.append(ask)
            if kept:
                self._waiting[key] = kept
            else:
                del self._waiting[key]
            return taken

    def _drain(self, key: int) -> None:
        taken = []
        for ask in self._take(key):
            # Its request was cancelled (the API stopping it): nothing to compute, its slot to give back.
            if ask.answer.set_running_or_notify_cancel():
                taken.append(ask)
            else:
                ask.done()
        if not taken:
            return
        if len(taken) > 1:
            SAMPLE_REQUESTS_SHARED.inc(len(taken) - 1)
        answered = 0
        try:
            # Stopped between chunks only when every request in the pass would stop.
            samples = generate_together(
                taken[0].sampler, [ask.latents() for ask in taken], lambda: all(ask.should_stop() for ask in taken)
            )
            for ask, rows in zip(taken, samples, strict=True):
                try:
                    body: bytes | Exception = ask.render(rows)
                except Exception as exc:
                    body = exc
                answered += 1
                _answer(ask, body)
        except Exception as exc:
            for ask in taken[answered:]:
                _answer(ask, exc)

    @property
    def waiting(self) -> int:
        """Requests in line that no pass has taken yet."""
        with self._lock:
            return sum(len(line) for line in self._waiting.values())


def _answer(ask: Ask, body: bytes | Exception) -> None:
    # Its slot first: a client answered may ask again at once, and must find its slot free.
    ask.done()
    if isinstance(body, Exception):
        ask.answer.set_exception(body)
    else:
        ask.answer.set_result(body)
