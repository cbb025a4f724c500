"""A real service stack for the service benchmarks: a fresh Postgres database, Redis, API and worker."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.common import REPO, Context
from tests.support.isolated import Stack

LOG_DIR = REPO / "bench" / "logs"


@contextmanager
def service_stack(ctx: Context, **settings: str) -> Iterator[Stack]:
    """Postgres and Redis must be running (as for `make test`). Production timings, no rate limits."""
    production_like = {
        "heartbeat_seconds": "1",
        "claim_stale_seconds": "30",
        "worker_nice": "5",
        "worker_torch_threads": str(ctx.threads),
        "rate_jobs_per_minute": "0",
        "rate_samples_per_minute": "0",
        **settings,
    }
    with tempfile.TemporaryDirectory(prefix="wgan-bench-") as root:
        stack = Stack(Path(root), LOG_DIR, **production_like)
        try:
            yield stack
        finally:
            stack.close()


def wait_finished(client: httpx.Client, job_id: str, timeout: float, poll: float = 0.2) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["status"] in {"succeeded", "failed", "cancelled"}:
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {job['status']} at step {job['progress']['step']}")
        time.sleep(poll)


def metrics(client: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = []
    after = 0
    while True:
        page = client.get(f"/api/v1/jobs/{job_id}/metrics", params={"after_step": after, "limit": 5000}).json()
        points += page["items"]
        if page["next_after_step"] is None:
            return points
        after = page["next_after_step"]


def parse_time(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def steps_per_second(
    points: list[dict[str, Any]], after_step: int = 0, window: tuple[float, float] | None = None
) -> float:
    """The generator-step rate between the first and last recorded point (after `after_step`, or within a
    wall-clock window), as the worker recorded them: training with streaming and checkpointing on."""
    chosen = [p for p in points if p["step"] > after_step]
    if window is not None:
        chosen = [p for p in chosen if window[0] <= parse_time(p["time"]) <= window[1]]
    if len(chosen) < 2:
        raise ValueError("too few metric points to time")
    first, last = chosen[0], chosen[-1]
    return (last["step"] - first["step"]) / (parse_time(last["time"]) - parse_time(first["time"]))
