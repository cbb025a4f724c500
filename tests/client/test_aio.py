"""The async client against the real stack: a job's whole life, awaited."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from tests.client.conftest import WAIT_SECONDS
from tests.conftest import TOY_SPEC, make_key
from wgan_client import AsyncClient, CheckpointEvent, JobStatus, MetricsEvent, NotFound, StatusEvent


async def _life(api: str, key: str) -> None:
    async with AsyncClient(api, key) as client:
        job = await client.submit(TOY_SPEC)
        events = [event async for event in client.follow(job)]
        assert [int(event.id) for event in events] == list(range(1, len(events) + 1))
        assert isinstance(events[-1], StatusEvent) and events[-1].data.status is JobStatus.SUCCEEDED
        assert [e.data.step for e in events if isinstance(e, CheckpointEvent)] == [20, 40, 60]

        ended = await client.wait(job, timeout=WAIT_SECONDS)
        assert ended.status is JobStatus.SUCCEEDED
        assert [found.id async for found in client.list(page_size=1)] == [job.id]
        steps = [point.step async for point in client.metrics(job, page_size=5)]
        streamed = [point.step for e in events if isinstance(e, MetricsEvent) for point in e.data]
        assert steps == streamed == list(range(5, 61, 5))
        history = await client.history(job)
        assert history.points == len(steps) and history.last_step[-1] == 60
        points = await client.samples(job, n=8, seed=1)
        assert points.shape == (8, 2) and points.dtype == np.float32
        assert [checkpoint.step for checkpoint in await client.checkpoints(job)] == [20, 40, 60]

        await client.delete(job)
        with pytest.raises(NotFound):
            await client.get(job)


def test_a_jobs_life_with_the_async_client(api: str, worker: Any) -> None:
    asyncio.run(_life(api, make_key()))
