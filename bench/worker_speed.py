"""Training through the real worker (Celery, Postgres, Redis; streaming and checkpointing on) against
the minimal hand-written loop of the same model, loss and batch, interleaved in one run."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import torch

from bench.common import REPO, Benchmark, Context, Result, median, num, paired_ratios, table, verdict
from bench.pairs import CASES, CASES_BY_NAME, Case, make_hand_loop, make_run
from bench.service_stack import metrics, service_stack, steps_per_second, wait_finished
from bench.speed import PEAK_REPEATS, PEAK_SIZE, flops_per_step, matmul_gflops
from wgan_service import openmp

BAR = 1.0
BAR_CASES = [case for case in CASES if case.has_bar]
# What a worker does around the loop, as in production: metrics every 10 steps (5 for the slow
# DCGAN, so its short runs still give a window to time), a checkpoint every 500 and at the end.
LOG_EVERY = {"toy": 10, "dcgan": 5}
POLL_SECONDS = 3.0


def _plan(case: Case, ctx: Context) -> tuple[int, int]:
    """(steps per worker job, steps of warm-up not timed)."""
    if case.spec["model"].get("arch") == "dcgan":
        return (15, 5) if ctx.quick else (30, 5)
    return (30, 10) if ctx.quick else (160, 10)


def _worker_rate(client: Any, case: Case, steps: int, warmup: int) -> float:
    kind = "dcgan" if case.spec["model"].get("arch") == "dcgan" else "toy"
    spec = {
        **case.spec,
        "steps": steps,
        "checkpoint_every": 500,
        "log_every": LOG_EVERY[kind],
        "evaluate": False,
        "device": "cpu",
    }
    job = client.post("/api/v1/jobs", json=spec)
    job.raise_for_status()
    # Rarely: each poll is work for the API and Postgres on the cores the worker trains on, and the
    # rate comes from the recorded metric points, not from when the poll noticed the end.
    done = wait_finished(client, job.json()["id"], timeout=3600, poll=POLL_SECONDS)
    if done["status"] != "succeeded":
        raise RuntimeError(f"the benchmark job ended {done['status']}: {done['error']}")
    rate = steps_per_second(metrics(client, done["id"]), after_step=warmup)
    client.delete(f"/api/v1/jobs/{done['id']}")
    return rate


def hand_rate(case_name: str, steps: int, warmup: int) -> float:
    hand = make_hand_loop(make_run(CASES_BY_NAME[case_name]))
    hand.train(warmup)
    start = time.perf_counter()
    hand.train(steps - warmup)
    return (steps - warmup) / (time.perf_counter() - start)


def _hand_rate(case: Case, steps: int, warmup: int, threads: int) -> float:
    """The hand loop in a fresh process at OpenMP's defaults (no wait policy, no spin count), whatever
    this process was started with: OpenMP reads them once, when torch loads."""
    env = openmp.unset()
    command = [sys.executable, "-m", "bench.worker_speed", case.name, str(steps), str(warmup), str(threads)]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=3600, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def run(ctx: Context) -> Result:
    rounds = 1 if ctx.quick else 3
    peak = matmul_gflops(PEAK_SIZE, PEAK_SIZE, PEAK_SIZE, PEAK_REPEATS)
    rows: list[dict[str, Any]] = []
    with service_stack(ctx) as stack:
        stack.api()
        stack.worker()
        with stack.client() as client:
            for case in BAR_CASES:
                steps, warmup = _plan(case, ctx)
                worker, hand = [], []
                for _ in range(rounds):
                    hand.append(_hand_rate(case, steps, warmup, ctx.threads))
                    worker.append(_worker_rate(client, case, steps, warmup))
                    print(f"  {case.name}: worker {worker[-1]:.2f}, hand {hand[-1]:.2f} steps/s", flush=True)
                flops = flops_per_step(case)["hand"]
                ratios = paired_ratios(worker, hand)
                rows.append(
                    {
                        "case": case.name,
                        "title": case.title,
                        "worker": worker,
                        "hand": hand,
                        "ratios": ratios,
                        "ratio": median(ratios),
                        "flops_per_step": flops,
                        "worker_gflops": median(worker) * flops / 1e9,
                        "hand_gflops": median(hand) * flops / 1e9,
                    }
                )
    return {
        "rows": rows,
        "peak_gflops": peak,
        "threads": torch.get_num_threads(),
        "passed": all(row["ratio"] >= BAR for row in rows),
    }


def render(data: Result) -> str:
    rows = [
        (
            row["title"],
            num(median(row["worker"]), 2),
            num(median(row["hand"]), 2),
            num(row["ratio"], 3),
            ", ".join(num(r, 3) for r in row["ratios"]),
            num(row["worker_gflops"], 1),
            f"{100 * row['worker_gflops'] / data['peak_gflops']['best']:.0f}%",
            verdict(row["ratio"] >= BAR),
        )
        for row in data["rows"]
    ]
    return "\n".join(
        [
            "Each job runs through the whole service: submitted over HTTP, trained by a Celery worker process "
            "(solo pool, its production niceness 5, torch at the same thread count) that writes metric batches "
            "to Postgres, publishes them on Redis and checkpoints every 500 steps and at the end. Its rate is "
            "timed from the metric points it recorded, after a warm-up; the hand-written loop "
            "(`bench/handloop.py`, the same networks, loss and batch) is timed in a fresh process at OpenMP's "
            "defaults (no OMP_WAIT_POLICY, no GOMP_SPINCOUNT), alternately with the worker's jobs; the worker "
            "runs as its command starts it (a bounded spin, threads that follow the free cores). wgan-clip "
            "runs the constant schedule here (the paper's boosts would make steps unequal). Peak: the best fp32 "
            "4096³ matmul at the same threads, "
            f"{num(data['peak_gflops']['best'], 1)} GFLOP/s.",
            "",
            table(
                [
                    "case",
                    "worker steps/s",
                    "hand loop steps/s",
                    "ratio (median)",
                    "ratios per round",
                    "worker GFLOP/s",
                    "of peak",
                    f"bar ≥ {BAR}×",
                ],
                rows,
            ),
        ]
    )


BENCHMARK = Benchmark(
    name="worker-speed",
    title="Speed: a job through the real worker against the hand-written loop",
    summary="the worker's training rate with streaming and checkpoints vs the minimal loop",
    run=run,
    render=render,
)


def main(argv: list[str]) -> int:
    case_name, steps, warmup, threads = argv[0], int(argv[1]), int(argv[2]), int(argv[3])
    torch.set_num_threads(threads)
    print(hand_rate(case_name, steps, warmup))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
