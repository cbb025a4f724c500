"""Sample requests in line for one generator share its passes, each answered with its own bytes, bit for bit
what it gets alone; a request still leaves the line when its client goes, and one's failure is its own."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from app.compute_gate import ComputeGate
from app.sample_batches import Ask, LeftTheLine, SampleBatches
from tests.support.gates import occupied
from tests.wgan.helpers import TINY_DIGITS, tiny_trainer
from wgan.checkpoint import save_checkpoint
from wgan.render import grid_png, to_uint8
from wgan.sampling import SAMPLE_CHUNK, Sampler, SamplingStopped, latent, load_sampler, sample


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    trainer = tiny_trainer(TINY_DIGITS, steps=2, model={"generator_batch_norm": True})
    trainer.fit()
    return save_checkpoint(tmp_path_factory.mktemp("gen"), trainer.checkpoint())


@pytest.fixture(scope="module")
def sampler(checkpoint: Path) -> Sampler:
    return load_sampler(checkpoint)


@pytest.fixture
def passes(sampler: Sampler) -> Iterator[list[int]]:
    """The batch size of every generator call, as it happens."""
    calls: list[int] = []
    hook = sampler.generator.register_forward_hook(lambda _m, inputs, _o: calls.append(len(inputs[0])))
    yield calls
    hook.remove()


def _png(sampler: Sampler, n: int, seed: int) -> bytes:
    return grid_png(to_uint8(sample(sampler, n, seed)))


class Request:
    """What the route hands the line: an Ask rendering a PNG grid, and a record of its slot's return."""

    def __init__(self, sampler: Sampler, n: int, seed: int, render: Callable[[np.ndarray], bytes] | None = None):
        self.done = 0
        self.answered_before_done = False
        self.stop = False
        dim = sampler.spec.model.latent_dim
        assert dim is not None
        self.ask = Ask(
            sampler,
            n,
            lambda: latent(seed, n, dim),
            render or (lambda rows: grid_png(to_uint8(rows))),
            lambda: self.stop,
            self._done,
        )

    def _done(self) -> None:
        self.done += 1
        self.answered_before_done |= self.ask.answer.done()


async def _answers(batches: SampleBatches, requests: list[Request], gone: asyncio.Event | None = None) -> list[object]:
    """Every request put in line while all the gate's slots are busy, then answered once they free up."""
    with occupied(batches.gate):
        asked = [
            asyncio.ensure_future(batches.answer(r.ask, gone or asyncio.Event(), time.monotonic() + 30))
            for r in requests
        ]
        while batches.waiting < len(requests):
            await asyncio.sleep(0.001)
    return await asyncio.gather(*asked, return_exceptions=True)


def test_requests_in_line_ride_in_the_first_ones_padding_and_get_their_own_bytes(
    sampler: Sampler, passes: list[int]
) -> None:
    batches = SampleBatches(ComputeGate(1))
    # 10 rows leave 54 of padding: 20 and 30 fit in it, 60 does not and has a pass of its own after them.
    asks = [(10, 1), (60, 2), (20, 3), (30, 4)]
    requests = [Request(sampler, n, seed) for n, seed in asks]
    answers = asyncio.run(_answers(batches, requests))
    # Two passes of one chunk each, where each request alone makes one: 10+20+30 together, then 60.
    assert passes == [SAMPLE_CHUNK, SAMPLE_CHUNK]
    assert answers == [_png(sampler, n, seed) for n, seed in asks]
    assert [r.done for r in requests] == [1, 1, 1, 1]
    # Each slot went back before its answer: a client answered may ask again at once and find it free.
    assert not any(r.answered_before_done for r in requests)
    assert batches.waiting == 0 and batches.gate.waiting == 0


def test_with_sharing_off_each_request_has_a_pass_of_its_own(sampler: Sampler, passes: list[int]) -> None:
    batches = SampleBatches(ComputeGate(1), together=False)
    requests = [Request(sampler, 5, seed) for seed in range(3)]
    answers = asyncio.run(_answers(batches, requests))
    assert passes == [SAMPLE_CHUNK] * 3
    assert answers == [_png(sampler, 5, seed) for seed in range(3)]


def test_a_request_that_fills_its_chunks_carries_nobody(sampler: Sampler, passes: list[int]) -> None:
    batches = SampleBatches(ComputeGate(1))
    requests = [Request(sampler, SAMPLE_CHUNK, 0), Request(sampler, 1, 1)]
    answers = asyncio.run(_answers(batches, requests))
    assert passes == [SAMPLE_CHUNK, SAMPLE_CHUNK]
    assert answers == [_png(sampler, SAMPLE_CHUNK, 0), _png(sampler, 1, 1)]


def test_a_request_whose_client_goes_leaves_the_line_and_the_others_are_still_served(
    sampler: Sampler, passes: list[int]
) -> None:
    batches = SampleBatches(ComputeGate(1))
    staying, leaving = Request(sampler, 4, 0), Request(sampler, 4, 1)

    async def scenario() -> list[object]:
        gone = asyncio.Event()
        with occupied(batches.gate):
            stays = asyncio.ensure_future(batches.answer(staying.ask, asyncio.Event(), time.monotonic() + 30))
            goes = asyncio.ensure_future(batches.answer(leaving.ask, gone, time.monotonic() + 30))
            while batches.waiting < 2:
                await asyncio.sleep(0.001)
            gone.set()
            with pytest.raises(LeftTheLine, match="waited in line"):
                await goes
            # Its drain left the line with it: one request, one drain.
            assert batches.waiting == 1 and batches.gate.waiting == 1
        return [await stays]

    answers = asyncio.run(scenario())
    assert passes == [SAMPLE_CHUNK]
    assert answers == [_png(sampler, 4, 0)]
    # The one that left was never taken by a pass: its slot is the route's to give back, not the pass's.
    assert (staying.done, leaving.done) == (1, 0)


def test_a_request_past_its_deadline_in_line_leaves_it(sampler: Sampler) -> None:
    batches = SampleBatches(ComputeGate(1))
    late = Request(sampler, 4, 0)

    async def scenario() -> float:
        started = time.monotonic()
        with occupied(batches.gate), pytest.raises(LeftTheLine):
            await batches.answer(late.ask, asyncio.Event(), started + 0.2)
        return time.monotonic() - started

    assert 0.2 <= asyncio.run(scenario()) < 5
    assert batches.waiting == 0 and late.done == 0


def test_a_closed_gate_tells_those_in_line(sampler: Sampler) -> None:
    gate = ComputeGate(1)
    batches = SampleBatches(gate)
    request = Request(sampler, 4, 0)

    async def scenario() -> None:
        with occupied(gate):
            asked = asyncio.ensure_future(batches.answer(request.ask, asyncio.Event(), time.monotonic() + 30))
            while batches.waiting < 1:
                await asyncio.sleep(0.001)
            gate.close()
            with pytest.raises(LeftTheLine, match="shutting down"):
                await asyncio.wait_for(asked, 5)

    asyncio.run(scenario())
    with pytest.raises(LeftTheLine, match="shutting down"):
        asyncio.run(batches.answer(Request(sampler, 4, 1).ask, asyncio.Event(), time.monotonic() + 30))
    assert batches.waiting == 0 and gate.waiting == 0 and request.done == 0


def test_one_requests_failure_is_its_own(sampler: Sampler) -> None:
    def broken(rows: np.ndarray) -> bytes:
        raise ValueError("cannot draw this")

    batches = SampleBatches(ComputeGate(1))
    requests = [Request(sampler, 4, 0), Request(sampler, 4, 1, broken), Request(sampler, 4, 2)]
    first, failed, last = asyncio.run(_answers(batches, requests))
    assert (first, last) == (_png(sampler, 4, 0), _png(sampler, 4, 2))
    assert isinstance(failed, ValueError) and "cannot draw" in str(failed)
    assert [r.done for r in requests] == [1, 1, 1]
    assert not any(r.answered_before_done for r in requests)


def test_riders_get_the_shared_chunk_first_and_do_not_share_a_long_requests_fate(
    sampler: Sampler, passes: list[int]
) -> None:
    batches = SampleBatches(ComputeGate(1))
    # Three chunks for the first, whose client has gone; the second rides in its last chunk's padding.
    first, rider = Request(sampler, 2 * SAMPLE_CHUNK + 4, 0), Request(sampler, 4, 1)
    first.stop = True
    passes_when_answered: list[int] = []
    rider.ask.done = lambda: passes_when_answered.append(len(passes))
    stopped, answer = asyncio.run(_answers(batches, [first, rider]))
    # The shared chunk alone was computed: the rider had its answer, the first stopped before its own.
    assert passes == [SAMPLE_CHUNK] and passes_when_answered == [1]
    assert isinstance(stopped, SamplingStopped) and first.done == 1
    assert answer == _png(sampler, 4, 1)


def test_a_long_request_with_a_rider_still_gets_its_own_bytes(sampler: Sampler, passes: list[int]) -> None:
    batches = SampleBatches(ComputeGate(1))
    first, rider = Request(sampler, 2 * SAMPLE_CHUNK + 4, 0), Request(sampler, 4, 1)
    answers = asyncio.run(_answers(batches, [first, rider]))
    assert passes == [SAMPLE_CHUNK] * 3
    assert answers == [_png(sampler, 2 * SAMPLE_CHUNK + 4, 0), _png(sampler, 4, 1)]


def test_a_shared_chunk_is_not_computed_when_every_request_in_it_would_stop(
    sampler: Sampler, passes: list[int]
) -> None:
    batches = SampleBatches(ComputeGate(1))
    requests = [Request(sampler, 4, 0), Request(sampler, 4, 1)]
    for request in requests:
        request.stop = True
    answers = asyncio.run(_answers(batches, requests))
    assert passes == []
    assert all(isinstance(answer, SamplingStopped) for answer in answers)
    assert [r.done for r in requests] == [1, 1]


def test_requests_for_other_generators_keep_their_place_in_line(sampler: Sampler, checkpoint: Path) -> None:
    # Two generators (the same checkpoint loaded twice is two): A and its rider R, then B, then C; C comes
    # after B though it is A's generator's, and A's rider R left no drain behind to serve C early.
    other = load_sampler(checkpoint)
    order: list[str] = []
    hook = sampler.generator.register_forward_hook(lambda *_: order.append("K"))
    other.generator.register_forward_hook(lambda *_: order.append("K2"))
    batches = SampleBatches(ComputeGate(1))
    a, r, b, c = Request(sampler, 60, 0), Request(sampler, 4, 1), Request(other, 64, 2), Request(sampler, 64, 3)

    async def scenario() -> list[object]:
        with occupied(batches.gate):
            asked = [
                asyncio.ensure_future(batches.answer(x.ask, asyncio.Event(), time.monotonic() + 30))
                for x in (a, r, b, c)
            ]
            while batches.waiting < 4:
                await asyncio.sleep(0.001)
        results = await asyncio.gather(*asked)
        # The rider's place in the line was given up as it was answered: nothing is left in line.
        assert batches.gate.waiting == 0
        return results

    try:
        answers = asyncio.run(scenario())
    finally:
        hook.remove()
    assert order == ["K", "K2", "K"]
    assert answers == [_png(sampler, 60, 0), _png(sampler, 4, 1), _png(other, 64, 2), _png(sampler, 64, 3)]


def test_a_slot_that_cannot_be_given_back_holds_up_no_answer(sampler: Sampler) -> None:
    def unreachable() -> None:
        raise ConnectionResetError("slot store")

    batches = SampleBatches(ComputeGate(1))
    requests = [Request(sampler, 4, 0), Request(sampler, 4, 1)]
    requests[0].ask.done = unreachable
    assert asyncio.run(_answers(batches, requests)) == [_png(sampler, 4, 0), _png(sampler, 4, 1)]


def test_one_requests_latents_failing_is_its_own(sampler: Sampler) -> None:
    def unmade() -> np.ndarray:
        raise ValueError("no latents")

    batches = SampleBatches(ComputeGate(1))
    requests = [Request(sampler, 4, 0), Request(sampler, 4, 1), Request(sampler, 4, 2)]
    requests[0].ask.latents = unmade
    failed, *served = asyncio.run(_answers(batches, requests))
    assert isinstance(failed, ValueError)
    assert served == [_png(sampler, 4, 1), _png(sampler, 4, 2)]
    assert [r.done for r in requests] == [1, 1, 1]


def test_a_request_under_way_when_its_client_goes_runs_to_its_end_and_is_answered(sampler: Sampler) -> None:
    # A pass cannot be taken back once on a thread: it asks should_stop itself between chunks.
    running, finish = threading.Event(), threading.Event()

    def slow(rows: np.ndarray) -> bytes:
        running.set()
        finish.wait(10)
        return grid_png(to_uint8(rows))

    batches = SampleBatches(ComputeGate(1))
    request = Request(sampler, 4, 0, slow)

    async def leave_while_it_runs() -> object:
        gone = asyncio.Event()
        asked = asyncio.ensure_future(batches.answer(request.ask, gone, time.monotonic() + 30))
        while not running.is_set():
            await asyncio.sleep(0.001)
        gone.set()
        await asyncio.sleep(0.05)
        assert not asked.done()
        finish.set()
        return await asked

    assert asyncio.run(leave_while_it_runs()) == _png(sampler, 4, 0)
    assert request.done == 1
