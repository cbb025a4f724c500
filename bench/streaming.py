"""Live metrics: from the worker recording a point to an SSE client receiving it, with 1 and 100 clients."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import numpy as np

from bench.common import Benchmark, Context, Result, num, table, verdict
from bench.service_stack import parse_time, service_stack

BAR_P50_MS = 50.0
BAR_P99_MS = 250.0
CLIENTS = (1, 100)
# A small toy at the service's default log interval (a point every 10 steps): a few metric events per
# second per job, fanned out to every client.
SPEC = {
    "dataset": {"name": "8gaussians"},
    "model": {"hidden_dim": 32, "depth": 2},
    "batch_size": 64,
    "n_critic": 2,
    "log_every": 10,
    "checkpoint_every": 100_000,
    "evaluate": False,
}


async def _follow(
    client: httpx.AsyncClient,
    job_id: str,
    samples: list[tuple[float, float]],
    ready: asyncio.Event,
    connected: list[int],
    clients: int,
) -> None:
    """Read the stream to its end, noting (recorded time, receipt time) of every metric point."""
    async with client.stream("GET", f"/api/v1/jobs/{job_id}/events") as response:
        connected.append(1)
        if len(connected) == clients:
            ready.set()
        kind, data = "message", list[str]()
        async for line in response.aiter_lines():
            if line == "":
                if kind == "metrics" and data:
                    received = time.time()
                    samples.extend((parse_time(point["time"]), received) for point in json.loads("".join(data)))
                elif kind == "status" and data and json.loads("".join(data))["status"] in {"succeeded", "failed"}:
                    return
                kind, data = "message", list[str]()
            elif line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())


async def _measure(base_url: str, key: str, clients: int, steps: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=clients + 5, max_keepalive_connections=clients + 5)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=120, limits=limits) as client:
        # A long job occupies the worker while the clients connect to the measured one, queued behind it.
        blocker = (await client.post("/api/v1/jobs", json={**SPEC, "steps": 1_000_000})).json()
        job = (await client.post("/api/v1/jobs", json={**SPEC, "steps": steps})).json()
        samples: list[tuple[float, float]] = []
        ready = asyncio.Event()
        connected: list[int] = []
        tasks = [
            asyncio.create_task(_follow(client, job["id"], samples, ready, connected, clients)) for _ in range(clients)
        ]
        await asyncio.wait_for(ready.wait(), 60)
        started = time.time()
        await client.post(f"/api/v1/jobs/{blocker['id']}/cancel")
        await asyncio.gather(*tasks)
        elapsed = time.time() - started
    # Only points recorded once every client was connected: earlier ones reach late clients as replay.
    latencies = [received - recorded for recorded, received in samples if recorded >= started]
    if not latencies:
        raise RuntimeError("no metric point was recorded after the clients connected")
    ms = np.asarray(latencies) * 1000
    per_client = len(latencies) / clients / elapsed
    return {
        "clients": clients,
        "points": len(latencies),
        "p50": float(np.percentile(ms, 50)),
        "p99": float(np.percentile(ms, 99)),
        "max": float(ms.max()),
        "seconds": elapsed,
        "events_per_second_per_client": per_client,
    }


def run(ctx: Context) -> Result:
    steps = 1500 if ctx.quick else 6000
    rows = []
    with service_stack(ctx, worker_queues="cpu") as stack:
        stack.api()
        stack.worker()
        key = stack.key()
        for clients in CLIENTS:
            rows.append(asyncio.run(_measure(stack.api_url, key, clients, steps)))
            print(f"  {clients} clients: p50 {rows[-1]['p50']:.1f} ms, p99 {rows[-1]['p99']:.1f} ms", flush=True)
    passed = all(row["p50"] <= BAR_P50_MS and row["p99"] <= BAR_P99_MS for row in rows)
    return {"rows": rows, "passed": passed}


def render(data: Result) -> str:
    rows = [
        (
            row["clients"],
            row["points"],
            num(row["events_per_second_per_client"], 1),
            num(row["p50"], 1),
            num(row["p99"], 1),
            num(row["max"], 1),
            verdict(row["p50"] <= BAR_P50_MS and row["p99"] <= BAR_P99_MS),
        )
        for row in data["rows"]
    ]
    return "\n".join(
        [
            "A toy job logging a metric point every 10 steps (the default), streamed to every client through "
            "`GET /api/v1/jobs/{id}/events`. A point's latency runs from the time the worker's recorder stamped it "
            "(just before its batch is written to Postgres and published on Redis) to the moment the client, on the "
            "same machine, has parsed it. The clients connect while the job waits behind another; `points` sums the "
            "points over all clients.",
            "",
            table(
                [
                    "clients",
                    "points received",
                    "points/s per client",
                    "p50 ms",
                    "p99 ms",
                    "max ms",
                    f"bar p50 ≤ {BAR_P50_MS:.0f}, p99 ≤ {BAR_P99_MS:.0f}",
                ],
                rows,
            ),
        ]
    )


BENCHMARK = Benchmark(
    name="streaming",
    title="Streaming: metric to SSE client latency",
    summary="time from a worker's metric point to SSE clients, 1 and 100 at once",
    run=run,
    render=render,
)
