"""Sampling over HTTP from a warm checkpoint against a bare forward pass + PNG encode in one process."""

from __future__ import annotations

import threading
import time

import httpx
import numpy as np
import torch

from bench.common import Benchmark, Context, Result, num, table, verdict
from bench.service_stack import service_stack, wait_finished
from wgan.render import grid_png, to_uint8
from wgan.sampling import load_sampler, sample

BAR = 1.15
N = 64
CONCURRENT = 16
# A 32×32 DCGAN at width 64 on the digits: the size the issue names.
SPEC = {
    "dataset": {"name": "digits"},
    "model": {"arch": "dcgan", "image_size": 32, "hidden_dim": 64},
    "batch_size": 16,
    "steps": 2,
    "checkpoint_every": 2,
    "evaluate": False,
}


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)), "n": len(seconds)}


def _http(client: httpx.Client, job_id: str, seed: int) -> float:
    start = time.perf_counter()
    response = client.get(f"/api/v1/jobs/{job_id}/samples", params={"n": N, "seed": seed})
    elapsed = time.perf_counter() - start
    response.raise_for_status()
    return elapsed


def _throughput(base_url: str, headers: dict[str, str], job_id: str, seconds: float) -> dict[str, float]:
    counts = [0] * CONCURRENT
    errors = [0] * CONCURRENT
    stop = time.monotonic() + seconds

    def client_loop(index: int) -> None:
        with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
            seed = index * 1_000_000
            while time.monotonic() < stop:
                seed += 1
                response = client.get(f"/api/v1/jobs/{job_id}/samples", params={"n": N, "seed": seed})
                counts[index] += 1
                errors[index] += response.status_code != 200

    started = time.perf_counter()
    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(CONCURRENT)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {"requests_per_second": sum(counts) / elapsed, "errors": sum(errors), "requests": sum(counts)}


def run(ctx: Context) -> Result:
    blocks, per_block = (2, 10) if ctx.quick else (6, 25)
    with service_stack(ctx) as stack:
        api = stack.api()
        stack.worker()
        key = stack.key()
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=stack.api_url, headers=headers, timeout=60) as client:
            job = client.post("/api/v1/jobs", json=SPEC).json()
            done = wait_finished(client, job["id"], timeout=600)
            assert done["status"] == "succeeded", done["error"]
            checkpoint = client.get(f"/api/v1/jobs/{job['id']}/checkpoints").json()["items"][-1]
        # Cold: the first request of a freshly started API process (it loads the generator).
        api.stop()
        stack.processes.remove(api)
        stack.api()
        with httpx.Client(base_url=stack.api_url, headers=headers, timeout=60) as client:
            cold = _http(client, job["id"], seed=0) * 1000
            # The same checkpoint, loaded here, for the bare baseline at the API's thread count (1).
            key_path = stack.rows("SELECT artifact_key FROM checkpoints WHERE id = :id", id=checkpoint["id"])[0][0]
            sampler = load_sampler(stack.root / "artifacts" / key_path)
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                http_times: list[float] = []
                bare_times: list[float] = []
                seed = 1
                for _ in range(blocks):  # interleaved blocks: both sides see the same machine load
                    for _ in range(per_block):
                        http_times.append(_http(client, job["id"], seed))
                        seed += 1
                    for _ in range(per_block):
                        start = time.perf_counter()
                        grid_png(to_uint8(sample(sampler, N, seed)))
                        bare_times.append(time.perf_counter() - start)
                        seed += 1
            finally:
                torch.set_num_threads(threads)
        throughput = _throughput(stack.api_url, headers, job["id"], 5 if ctx.quick else 15)
    http_p, bare_p = _percentiles(http_times), _percentiles(bare_times)
    ratio = http_p["p50"] / bare_p["p50"]
    return {
        "http": http_p,
        "bare": bare_p,
        "ratio_p50": ratio,
        "ratio_p99": http_p["p99"] / bare_p["p99"],
        "cold_ms": cold,
        "throughput": throughput,
        "passed": ratio <= BAR,
    }


def render(data: Result) -> str:
    http, bare = data["http"], data["bare"]
    rows = [
        ("GET /samples?n=64 (PNG), warm, distinct seeds", num(http["p50"], 1), num(http["p99"], 1), http["n"]),
        (
            "bare forward pass + PNG encode, same checkpoint, 1 thread",
            num(bare["p50"], 1),
            num(bare["p99"], 1),
            bare["n"],
        ),
    ]
    tp = data["throughput"]
    return "\n".join(
        [
            f"A 32×32 DCGAN (width 64) checkpoint; n = {N}; each request a new seed, so no response is reused. "
            "The API samples on one torch thread (`WGAN_API_TORCH_THREADS`), so the baseline does too; the two "
            "are timed in interleaved blocks.",
            "",
            table(["what", "p50 ms", "p99 ms", "requests"], rows),
            "",
            table(
                ["measure", "value", f"bar ≤ {BAR}×"],
                [
                    ("HTTP p50 / bare p50", num(data["ratio_p50"], 3), verdict(data["ratio_p50"] <= BAR)),
                    ("HTTP p99 / bare p99", num(data["ratio_p99"], 3), "–"),
                    (
                        "cold first request after the API starts (loads the generator)",
                        f"{num(data['cold_ms'], 0)} ms",
                        "–",
                    ),
                    (
                        f"throughput, {CONCURRENT} concurrent clients",
                        f"{num(tp['requests_per_second'], 1)} req/s ({tp['requests']} requests, {tp['errors']} errors)",
                        "–",
                    ),
                ],
            ),
        ]
    )


BENCHMARK = Benchmark(
    name="sampling",
    title="Sampling: warm requests against a bare forward pass",
    summary="sample latency over HTTP vs the bare forward pass + PNG, cold start, 16-client throughput",
    run=run,
    render=render,
)
