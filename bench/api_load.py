"""The API under 200 requests/s while a job trains on the same machine: latency, errors, training kept."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import numpy as np

from bench.common import Benchmark, Context, Result, num, table, verdict
from bench.service_stack import metrics, service_stack, steps_per_second

RATE = 200
RATES = (50, RATE)
CONNECTIONS = 32
BAR_P99_MS = 20.0
BAR_TRAINING = 0.90
# The training job: the 512-wide toy the speed benchmarks use.
TRAINING = {
    "dataset": {"name": "8gaussians"},
    "model": {"hidden_dim": 512, "depth": 3},
    "batch_size": 256,
    "steps": 1_000_000,
    "log_every": 10,
    "checkpoint_every": 500,
    "evaluate": False,
    "device": "cpu",
}
# Submitted jobs wait on the GPU queue, which no benchmark worker serves: they are stored, never trained.
SUBMITTED = {"dataset": {"name": "8gaussians"}, "steps": 100, "device": "cuda"}


class Connection:
    """A bare keep-alive HTTP/1.1 connection: a load generator light enough to share the machine."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def request(self, raw: bytes) -> int:
        self.writer.write(raw)
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return int(status_line.split()[1])


async def closed_loop(url: str, raw: bytes, expected: int, connections: int, total: int) -> tuple[float, int]:
    """`total` requests over `connections` connections, each sending its next as soon as it has an answer;
    the wall time taken and how many answers were not `expected`."""
    host, port = url.removeprefix("http://").split(":")
    opened = [Connection(*await asyncio.open_connection(host, int(port))) for _ in range(connections)]
    left = total
    wrong = 0

    async def drive(connection: Connection) -> None:
        nonlocal left, wrong
        while left > 0:
            left -= 1
            if await connection.request(raw) != expected:
                wrong += 1

    begin = time.perf_counter()
    await asyncio.gather(*(drive(connection) for connection in opened))
    seconds = time.perf_counter() - begin
    for connection in opened:
        connection.writer.close()
    return seconds, wrong


def raw_requests(url: str, key: str, job_id: str) -> dict[str, bytes]:
    """A GET job and a POST job (of SUBMITTED) as raw HTTP/1.1, by kind."""
    host = url.removeprefix("http://")
    auth = f"Authorization: Bearer {key}\r\nHost: {host}\r\n"
    body = json.dumps(SUBMITTED).encode()
    return {
        "get": f"GET /api/v1/jobs/{job_id} HTTP/1.1\r\n{auth}\r\n".encode(),
        "post": f"POST /api/v1/jobs HTTP/1.1\r\n{auth}Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body,
    }


async def _load(base_url: str, key: str, job_id: str, seconds: float, rate: int) -> dict[str, Any]:
    """Open loop: a request every 1/rate s whatever the answers, alternating GET job and POST job.

    Latency counts from when a request was due, so a slow server cannot hide its queue (no
    coordinated omission)."""
    raw = raw_requests(base_url, key, job_id)
    host, port = base_url.removeprefix("http://").split(":")
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(CONNECTIONS):
        idle.put_nowait(Connection(*await asyncio.open_connection(host, int(port))))
    results: dict[str, list[float]] = {"get": [], "post": []}
    errors: list[str] = []
    expected = {"get": 200, "post": 202}

    async def one(kind: str, due: float) -> None:
        connection = await idle.get()
        try:
            status = await connection.request(raw[kind])
        except (OSError, asyncio.IncompleteReadError) as exc:
            errors.append(type(exc).__name__)
            return
        results[kind].append(time.perf_counter() - due)
        idle.put_nowait(connection)
        if status != expected[kind]:
            errors.append(str(status))

    tasks = []
    begin = time.perf_counter()
    total = int(seconds * rate)
    for index in range(total):
        due = begin + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one("get" if index % 2 == 0 else "post", due)))
    await asyncio.gather(*tasks)
    achieved = total / (time.perf_counter() - begin)
    while not idle.empty():
        idle.get_nowait().writer.close()

    def pct(values: list[float]) -> dict[str, float]:
        ms = np.asarray(values) * 1000
        return {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)), "n": len(values)}

    every = results["get"] + results["post"]
    return {
        "get": pct(results["get"]),
        "post": pct(results["post"]),
        "all": pct(every),
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "achieved_rate": achieved,
    }


def run(ctx: Context) -> Result:
    idle_seconds, load_seconds = (10, 10) if ctx.quick else (30, 30)
    rows = []
    with service_stack(ctx) as stack:
        stack.api()
        stack.worker()
        key = stack.key()
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=stack.api_url, headers=headers, timeout=30) as client:
            job = client.post("/api/v1/jobs", json=TRAINING).json()
            while client.get(f"/api/v1/jobs/{job['id']}").json()["progress"]["step"] < 20:
                time.sleep(0.5)
            idle_window = (time.time(), time.time() + idle_seconds)
            time.sleep(idle_seconds)
            windows = []
            for rate in RATES:
                start = time.time()
                load = asyncio.run(_load(stack.api_url, key, job["id"], load_seconds, rate))
                windows.append((rate, load, (start, time.time())))
                time.sleep(5)  # let the queue drain and the window's last points be recorded
            points = metrics(client, job["id"])
            client.post(f"/api/v1/jobs/{job['id']}/cancel")
    idle = steps_per_second(points, window=idle_window)
    for rate, load, window in windows:
        loaded = steps_per_second(points, window=window)
        rows.append({"rate": rate, "load": load, "steps_per_second": loaded, "kept": loaded / idle})
    rows_typed: list[dict[str, Any]] = rows
    bar_row = next(row for row in rows_typed if row["rate"] == RATE)
    passed = (
        bar_row["load"]["all"]["p99"] <= BAR_P99_MS
        and bar_row["load"]["errors"] == 0
        and bar_row["kept"] >= BAR_TRAINING
    )
    return {"rows": rows, "idle_steps_per_second": idle, "passed": passed}


def render(data: Result) -> str:
    rows = []
    for row in data["rows"]:
        load = row["load"]
        bar = row["rate"] == RATE
        rows.append(
            (
                f"{row['rate']} (achieved {num(load['achieved_rate'], 0)})",
                f"{num(load['get']['p50'], 1)} / {num(load['get']['p99'], 1)}",
                f"{num(load['post']['p50'], 1)} / {num(load['post']['p99'], 1)}",
                num(load["all"]["p99"], 1) + (f" {verdict(load['all']['p99'] <= BAR_P99_MS)}" if bar else ""),
                f"{load['errors']} {' '.join(load['error_kinds'])}".strip(),
                f"{num(row['steps_per_second'], 2)} ({100 * row['kept']:.0f}%)"
                + (f" {verdict(row['kept'] >= BAR_TRAINING)}" if bar else ""),
            )
        )
    return "\n".join(
        [
            "While one worker trains the 512-wide toy (wgan-gp, batch 256) on this machine, an open-loop client "
            f"in the benchmark process (raw keep-alive HTTP/1.1 on {CONNECTIONS} connections; latency counted from "
            "when each request was due, so a server that falls behind shows its queue) sends requests at a fixed "
            "rate, alternating a job read and a job submission (submitted jobs wait on the GPU queue, which no "
            "worker here serves). Training speed is timed from the job's metric points in each window; idle: "
            f"{num(data['idle_steps_per_second'], 2)} steps/s.",
            "",
            table(
                [
                    "requests/s",
                    "GET p50 / p99 ms",
                    "POST p50 / p99 ms",
                    f"p99 all (bar ≤ {BAR_P99_MS:.0f} ms)",
                    "errors",
                    f"training steps/s (kept; bar ≥ {100 * BAR_TRAINING:.0f}%)",
                ],
                rows,
            ),
        ]
    )


BENCHMARK = Benchmark(
    name="api-load",
    title="API latency at 200 requests/s while training",
    summary="GET/POST job latency at 200 req/s beside a training job, and the training speed kept",
    run=run,
    render=render,
)
