"""The asynchronous client: the same calls as wgan_client.client's, awaited; only the I/O differs."""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

import httpx

from wgan_client import api
from wgan_client._core import Call, Options, Pages
from wgan_client.api import CheckpointRef, DatasetRef, ExperimentRef, JobRef, SampleFormat, Spec, WalkPath
from wgan_client.errors import ConnectionFailed
from wgan_client.models import (
    Checkpoint,
    Dataset,
    Experiment,
    ExperimentEvent,
    Job,
    JobEvent,
    JobPreview,
    JobStatus,
    Metric,
    MetricHistory,
    UploadedDataset,
)
from wgan_client.sse import Follower

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from PIL import Image

T = TypeVar("T")
E = TypeVar("E")


class AsyncClient:
    """An asyncio client of one wgan-service deployment, method for method as Client (see its settings).
    Use it as an async context manager, or await aclose()."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 4,
        max_retry_wait: float = 30.0,
        max_reconnects: int = 5,
    ) -> None:
        self.options = Options.resolve(base_url, api_key, timeout, max_retries, max_retry_wait, max_reconnects)
        self._http = httpx.AsyncClient(**self.options.http_settings())

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.aclose()

    # Jobs

    async def submit(self, spec: Spec, *, idempotency_key: str | None = None) -> Job:
        """Submit a job spec (a dict, or a pydantic model); safe to retry, it never makes two jobs."""
        return await self._send(api.submit(spec, idempotency_key))

    async def preview(self, spec: Spec) -> JobPreview:
        """The spec as a job would show it, its cost and estimated training time; creates nothing."""
        return await self._send(api.preview(spec))

    async def get(self, job: JobRef) -> Job:
        return await self._send(api.get_job(job))

    def list(self, status: JobStatus | str | None = None, *, page_size: int = 50) -> AsyncIterator[Job]:
        """Every job (of this key's owner), newest first, fetching pages as the iteration goes."""
        return self._iterate(api.jobs(status, page_size))

    async def cancel(self, job: JobRef) -> Job:
        return await self._send(api.cancel(job))

    async def delete(self, job: JobRef) -> None:
        await self._send(api.delete(job))

    def metrics(self, job: JobRef, *, after_step: int = 0, page_size: int = 1000) -> AsyncIterator[Metric]:
        """Every recorded metric point after `after_step`, in step order, across pages."""
        return self._iterate(api.metrics(job, after_step, page_size))

    async def history(
        self, job: JobRef, *, buckets: int | None = None, from_step: int | None = None, to_step: int | None = None
    ) -> MetricHistory:
        """The job's metrics downsampled to at most `buckets` buckets (the server's default: 2,000), whatever
        its length: per bucket the min, max and last of each series, so no spike is averaged away."""
        return await self._send(api.history(job, buckets, from_step, to_step))

    async def checkpoints(self, job: JobRef) -> builtins.list[Checkpoint]:
        return await self._send(api.checkpoints(job))

    def follow(self, job: JobRef, *, last_event_id: str | None = None) -> AsyncIterator[JobEvent]:
        """The job's events as they happen (after `last_event_id`, if given), through dropped connections,
        ending after its final status."""
        return self._follow(self._job_events(job, last_event_id))

    async def wait(self, job: JobRef, *, timeout: float | None = None) -> Job:
        """The job once it has ended (succeeded, failed or cancelled); WaitTimeout after `timeout` seconds."""
        current = await self.get(job)
        if current.status.final:
            return current
        deadline = None if timeout is None else time.monotonic() + timeout
        async for _ in self._follow(self._job_events(current, None, deadline)):
            pass
        return await self.get(current)

    # Samples and generators

    @overload
    async def samples(
        self,
        job: JobRef,
        n: int = ...,
        seed: int = ...,
        *,
        format: Literal["numpy"] = ...,
        checkpoint: CheckpointRef = ...,
        interpolate: tuple[int, int] | None = ...,
        frames: int = ...,
        path: WalkPath = ...,
    ) -> npt.NDArray[np.float32]: ...

    @overload
    async def samples(
        self,
        job: JobRef,
        n: int = ...,
        seed: int = ...,
        *,
        format: Literal["pil"],
        checkpoint: CheckpointRef = ...,
        interpolate: tuple[int, int] | None = ...,
        frames: int = ...,
        path: WalkPath = ...,
    ) -> Image.Image: ...

    async def samples(
        self,
        job: JobRef,
        n: int = 64,
        seed: int = 0,
        *,
        format: Literal["numpy", "pil"] = "numpy",
        checkpoint: CheckpointRef = "latest",
        interpolate: tuple[int, int] | None = None,
        frames: int = 16,
        path: WalkPath = "slerp",
    ) -> Any:
        """`n` samples for `seed` from a checkpoint, as a numpy array or a PIL image (needs the `images`
        extra); with `interpolate=(seed_a, seed_b)`, a latent walk of `frames` steps instead."""
        return await self._send(api.samples(job, n, seed, checkpoint, format, interpolate, frames, path))

    async def samples_raw(
        self,
        job: JobRef,
        n: int = 64,
        seed: int = 0,
        *,
        format: SampleFormat = "png",
        checkpoint: CheckpointRef = "latest",
        interpolate: tuple[int, int] | None = None,
        frames: int = 16,
        path: WalkPath = "slerp",
    ) -> bytes:
        """The service's own bytes: png, json, npy, or a walk's gif or webp."""
        return await self._send(api.samples_raw(job, n, seed, checkpoint, format, interpolate, frames, path))

    async def generator(
        self, job: JobRef, checkpoint: CheckpointRef = "latest", *, format: api.GeneratorFormat = "onnx"
    ) -> bytes:
        """The checkpoint's sampling generator as an ONNX file or its safetensors weights."""
        return await self._send(api.generator(job, checkpoint, format))

    async def model_card(self, job: JobRef, checkpoint: CheckpointRef = "latest") -> dict[str, Any]:
        """What the generator takes and gives (latents, output shape and range), its measures and spec."""
        return await self._send(api.model_card(job, checkpoint))

    # Datasets

    async def datasets(self) -> builtins.list[Dataset]:
        return await self._send(api.datasets())

    async def get_dataset(self, dataset: DatasetRef) -> Dataset:
        return await self._send(api.get_dataset(dataset))

    async def upload_dataset(self, path: str | Path, *, name: str | None = None) -> UploadedDataset:
        """Upload a .zip of PNG/JPEG images or an .npz with an array `x`; its id goes in a spec's dataset."""
        return await self._send(api.upload_dataset(path, name))

    async def delete_dataset(self, dataset: DatasetRef) -> None:
        await self._send(api.delete_dataset(dataset))

    # Experiments

    async def submit_experiment(
        self,
        name: str,
        base: Spec,
        *,
        grid: Mapping[str, Sequence[Any]] | None = None,
        runs: Sequence[Mapping[str, Any]] | None = None,
        idempotency_key: str | None = None,
    ) -> Experiment:
        """A grid (every combination of dotted-path values) or a list of runs over a base spec."""
        return await self._send(api.submit_experiment(name, base, grid, runs, idempotency_key))

    async def get_experiment(self, experiment: ExperimentRef, *, sort: str | None = None) -> Experiment:
        return await self._send(api.get_experiment(experiment, sort))

    def list_experiments(self, *, page_size: int = 20) -> AsyncIterator[Experiment]:
        return self._iterate(api.experiments(page_size))

    async def cancel_experiment(self, experiment: ExperimentRef) -> Experiment:
        return await self._send(api.cancel_experiment(experiment))

    async def delete_experiment(self, experiment: ExperimentRef) -> None:
        await self._send(api.delete_experiment(experiment))

    def follow_experiment(
        self, experiment: ExperimentRef, *, last_event_id: str | None = None
    ) -> AsyncIterator[ExperimentEvent]:
        """Every run's status changes and checkpoints on one stream, ending once every run has."""
        return self._follow(self._experiment_events(experiment, last_event_id))

    async def wait_experiment(self, experiment: ExperimentRef, *, timeout: float | None = None) -> Experiment:
        current = await self.get_experiment(experiment)
        if current.finished:
            return current
        deadline = None if timeout is None else time.monotonic() + timeout
        async for _ in self._follow(self._experiment_events(current, None, deadline)):
            pass
        return await self.get_experiment(current)

    # Sending

    def _job_events(self, job: JobRef, last_id: str | None, deadline: float | None = None) -> Follower[JobEvent]:
        return api.job_events(job, **self._follow_settings(last_id, deadline))

    def _experiment_events(
        self, experiment: ExperimentRef, last_id: str | None, deadline: float | None = None
    ) -> Follower[ExperimentEvent]:
        return api.experiment_events(experiment, **self._follow_settings(last_id, deadline))

    def _follow_settings(self, last_id: str | None, deadline: float | None) -> dict[str, Any]:
        o = self.options
        return {
            "max_reconnects": o.max_reconnects,
            "timeout": o.timeout,
            "last_event_id": last_id,
            "deadline": deadline,
        }

    async def _send(self, call: Call[T]) -> T:
        return call.read(await self._exchange(call, stream=False))

    async def _exchange(self, call: Call[Any], *, stream: bool) -> httpx.Response:
        retry = self.options.retry
        attempt = 0
        while True:
            outcome: httpx.Response | httpx.TransportError
            try:
                outcome = await self._http.send(call.request(self._http), stream=stream)
                if outcome.is_error:
                    await outcome.aread()  # a streamed error's problem details, before the connection goes
            except httpx.TransportError as exc:
                outcome = exc
            settled = retry.settle(call, attempt, outcome)
            if isinstance(settled, httpx.Response):
                return settled
            if isinstance(outcome, httpx.Response):
                await outcome.aclose()
            await asyncio.sleep(settled)
            attempt += 1

    @asynccontextmanager
    async def _stream(self, call: Call[Any]) -> AsyncIterator[httpx.Response]:
        response = await self._exchange(call, stream=True)
        try:
            yield response
        finally:
            await response.aclose()

    async def _iterate(self, pages: Pages[T]) -> AsyncIterator[T]:
        cursor = None
        while True:
            items, cursor = await self._send(pages.page(cursor))
            for item in items:
                yield item
            if cursor is None:
                return

    async def _follow(self, follower: Follower[E]) -> AsyncIterator[E]:
        while not follower.done:
            try:
                async with self._stream(follower.call()) as response:
                    if follower.opened(response):
                        async for line in response.aiter_lines():
                            event = follower.line(line)
                            if event is not None:
                                yield event
                                if follower.done:
                                    return
                if follower.done:
                    return
                wait = follower.ended()
            except (httpx.TransportError, ConnectionFailed) as exc:
                wait = follower.dropped(exc)
            await asyncio.sleep(wait)
