"""Stacked training through the real worker: an experiment's seeds trained as one stack (one
worker.train_stack task) against the same runs submitted as separate jobs, which the same worker trains
one after another. Side by side in one run, on one deployment, the worker choosing its torch threads by
the work per step as in production (WGAN_WORKER_TORCH_THREADS=0)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import httpx
import torch

from bench.common import REPO, Benchmark, Context, Result, median, num, table, verdict
from bench.device import STACK_BAR_SPEC
from bench.service_stack import parse_time, service_stack, wait_finished
from bench.speed import PEAK_REPEATS, PEAK_SIZE, matmul_gflops
from service.settings import Settings
from wgan.assemble import assemble
from wgan.config import TrainSpec
from wgan.cost import step_cost
from wgan_service import openmp

BAR = 3.0
# The hand-written ceiling (bench.stack_ceiling): runs and torch threads of each setting, in rounds.
CEILING_SETTINGS = ((1, 1), (1, 2), (8, 1), (8, 2))
CEILING_ROUNDS = 3
CASES: list[dict[str, Any]] = [
    {
        "name": "mlp128",
        "title": "8gaussians wgan-gp, MLP 128×3, batch 256, 8 seeds",
        "runs": 8,
        "spec": STACK_BAR_SPEC,
        "steps": (300, 40),
        "bar": True,
    },
    {
        "name": "mlp512",
        "title": "8gaussians wgan-gp, MLP 512×3, batch 256, 4 seeds",
        "runs": 4,
        "spec": {"dataset": {"name": "8gaussians"}, "model": {"hidden_dim": 512, "depth": 3}, "batch_size": 256},
        "steps": (40, 8),
        "bar": False,
    },
    {
        "name": "dcgan32",
        "title": "digits wgan-gp, DCGAN 32 px (width 32), batch 64, 4 seeds",
        "runs": 4,
        "spec": {"dataset": {"name": "digits"}, "model": {"image_size": 32, "hidden_dim": 32}, "batch_size": 64},
        "steps": (20, 4),
        "bar": False,
    },
]


def _spec(case: dict[str, Any], steps: int) -> dict[str, Any]:
    # No evaluation and one checkpoint at the end: the comparison is of training, not of measuring.
    return {**case["spec"], "steps": steps, "checkpoint_every": steps, "log_every": 5, "evaluate": False}


def _span(client: httpx.Client, job_ids: list[str]) -> tuple[float, str]:
    """Wall seconds from the first job's start to the last one's end, and their statuses."""
    jobs = [wait_finished(client, job_id, timeout=3600, poll=2.0) for job_id in job_ids]
    statuses = {job["status"] for job in jobs}
    start = min(parse_time(job["started_at"]) for job in jobs)
    end = max(parse_time(job["finished_at"]) for job in jobs)
    return end - start, ",".join(sorted(statuses))


def _stacked(client: httpx.Client, case: dict[str, Any], steps: int) -> tuple[float, str]:
    grid = {"seed": list(range(case["runs"]))}
    made = client.post("/api/v1/experiments", json={"name": case["name"], "base": _spec(case, steps), "grid": grid})
    made.raise_for_status()
    return _span(client, [run["job_id"] for run in made.json()["runs"]])


def _one_by_one(client: httpx.Client, case: dict[str, Any], steps: int) -> tuple[float, str]:
    ids = []
    for seed in range(case["runs"]):
        job = client.post("/api/v1/jobs", json={**_spec(case, steps), "seed": seed})
        job.raise_for_status()
        ids.append(job.json()["id"])
    return _span(client, ids)


def _threads(log_line: str) -> str:
    """'alone: 1' or 'stack: 2' from the worker's "training … with N torch thread(s)" line."""
    count = log_line.split(" with ", 1)[1].split(" torch", 1)[0]
    return f"{'stack' if 'a stack of' in log_line else 'alone'}: {count}"


def _ceiling_probe(runs: int, threads: int, seconds: float, shape: dict[str, Any]) -> float:
    """bench.stack_ceiling in a fresh process, with the worker's OpenMP wait setting."""
    env = {**openmp.unset(), **openmp.policy_for("worker", Settings())}
    command = [sys.executable, "-m", "bench.stack_ceiling", "--runs", str(runs), "--threads", str(threads)]
    command += ["--seconds", str(seconds), "--shape", json.dumps(shape)]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=True)
    return float(json.loads(done.stdout)["steps_per_second"])


def _ceiling(ctx: Context) -> dict[str, Any]:
    """What the bar case could reach with every per-run and engine cost gone: steps/s of the hand-written
    stack (bench.stack_ceiling) by runs and threads, interleaved in rounds, medians."""
    case = next(case for case in CASES if case["bar"])
    resolved = assemble(TrainSpec.model_validate(_spec(case, 1))).spec
    model = resolved.model
    assert model.hidden_dim is not None, "resolved"
    assert model.depth is not None, "resolved"
    shape = {
        "width": model.hidden_dim,
        "depth": model.depth,
        "batch": resolved.batch_size,
        "latent": model.latent_dim,
        "n_critic": resolved.n_critic,
        "lr": resolved.optimizer.lr,
        "betas": list(resolved.optimizer.betas or (0.9, 0.999)),
        "gp_weight": resolved.loss.gp_weight,
    }
    seconds = 1.5 if ctx.quick else 5.0
    rates: dict[str, list[float]] = {}
    for _ in range(1 if ctx.quick else CEILING_ROUNDS):
        for runs, threads in CEILING_SETTINGS:
            rates.setdefault(f"{runs}x{threads}", []).append(_ceiling_probe(runs, threads, seconds, shape))
    found = {setting: median(values) for setting, values in rates.items()}
    solo = max(found["1x1"], found["1x2"])
    stacked = max(found["8x1"], found["8x2"])
    return {"case": case["name"], "rates": found, "solo_best": solo, "stacked_best": stacked, "ratio": stacked / solo}


def run(ctx: Context) -> Result:
    peak = matmul_gflops(PEAK_SIZE, PEAK_SIZE, PEAK_SIZE, PEAK_REPEATS)
    rows = []
    with service_stack(ctx, worker_torch_threads="0", max_running_per_owner="8", max_stack_runs="8") as stack:
        stack.api()
        worker = stack.worker()
        with stack.client() as client:
            for case in CASES:
                steps = case["steps"][1] if ctx.quick else case["steps"][0]
                total = case["runs"] * steps
                alone_seconds, alone_status = _one_by_one(client, case, steps)
                stacked_seconds, stacked_status = _stacked(client, case, steps)
                flops = step_cost(assemble(TrainSpec.model_validate(_spec(case, steps))).spec).flops_per_step
                row = {
                    "case": case["name"],
                    "title": case["title"],
                    "runs": case["runs"],
                    "steps": steps,
                    "alone_steps_per_second": total / alone_seconds,
                    "stacked_steps_per_second": total / stacked_seconds,
                    "ratio": alone_seconds / stacked_seconds,
                    "flops_per_step": flops,
                    "alone_gflops": total * flops / alone_seconds / 1e9,
                    "stacked_gflops": total * flops / stacked_seconds / 1e9,
                    "statuses": [alone_status, stacked_status],
                    "bar": case["bar"],
                }
                rows.append(row)
                print(
                    f"  {case['name']}: alone {row['alone_steps_per_second']:.1f}, stacked "
                    f"{row['stacked_steps_per_second']:.1f} steps/s ({row['ratio']:.2f}x)",
                    flush=True,
                )
        threads = [_threads(line) for line in worker.log().splitlines() if "torch thread(s)" in line]
    ceiling = _ceiling(ctx)
    print(
        f"  ceiling: hand-written stack {ceiling['stacked_best']:.1f} vs solo {ceiling['solo_best']:.1f} steps/s "
        f"({ceiling['ratio']:.2f}x)",
        flush=True,
    )
    return {
        "rows": rows,
        "ceiling": ceiling,
        "peak_gflops": peak,
        "thread_choices": sorted(set(threads)),
        "passed": all(row["ratio"] >= BAR for row in rows if row["bar"])
        and all(status == "succeeded" for row in rows for status in row["statuses"]),
    }


def render(data: Result) -> str:
    best = data["peak_gflops"]["best"]
    rows = [
        (
            row["title"],
            str(row["steps"]),
            num(row["alone_steps_per_second"], 1),
            num(row["stacked_steps_per_second"], 1),
            num(row["ratio"], 2),
            f"{num(row['alone_gflops'], 1)} ({100 * row['alone_gflops'] / best:.0f}%)",
            f"{num(row['stacked_gflops'], 1)} ({100 * row['stacked_gflops'] / best:.0f}%)",
            verdict(row["ratio"] >= BAR) if row["bar"] else "–",
        )
        for row in data["rows"]
    ]
    return "\n".join(
        [
            "The same runs twice through one deployment (API, a Celery worker, Postgres, Redis): as separate jobs, "
            "which the worker trains one after another, and as one experiment whose seeds the worker trains as one "
            "stack (`wgan.stacked`). Total generator steps per second over all runs, from the first run's start to "
            "the last one's end (recording, checkpoints and the hand-offs between jobs included). The worker picks "
            f"its torch threads by the work per step, as in production ({', '.join(data['thread_choices'])} threads). "
            f"GFLOP/s are counted by `wgan.cost`; matmul peak: the best fp32 {PEAK_SIZE}³ matmul at "
            f"{torch.get_num_threads()} threads, {num(best, 1)} GFLOP/s.",
            "",
            table(
                [
                    "case",
                    "steps per run",
                    "one by one, steps/s",
                    "one stack, steps/s",
                    "speed-up",
                    "GFLOP/s one by one (of peak)",
                    "GFLOP/s stacked (of peak)",
                    f"bar ≥ {BAR}×",
                ],
                rows,
            ),
            *_render_ceiling(data),
        ]
    )


def _render_ceiling(data: Result) -> list[str]:
    ceiling = data.get("ceiling")
    if ceiling is None:
        return []
    rates = ceiling["rates"]
    case = next(row for row in data["rows"] if row["case"] == ceiling["case"])
    return [
        "",
        "The ceiling of the bar's case on this host: the same model, loss, batch and optimizer as a hand-written "
        "loop with nothing per run (`bench/stack_ceiling.py`: every layer of every run one `baddbmm`, one fused "
        "Adam over the stacked tensors, no metrics, checkpoints or service), each setting in a fresh process at "
        "the worker's OpenMP setting, interleaved, medians; total generator steps/s.",
        "",
        table(
            ["runs", "1 thread", "2 threads"],
            [
                ("1 (solo)", num(rates["1x1"], 1), num(rates["1x2"], 1)),
                ("8 (one stack)", num(rates["8x1"], 1), num(rates["8x2"], 1)),
            ],
        ),
        "",
        f"On one thread eight runs at once train {num(rates['8x1'] / rates['1x1'], 2)}× as fast as one: a solo "
        "run already keeps its core busy with these matmuls and elementwise passes, so what a stack gains here is "
        f"the second core. Best stack against best solo: {num(ceiling['ratio'], 2)}×; against the worker's "
        f"one-by-one rate above ({num(case['alone_steps_per_second'], 1)} steps/s), which also pays each job's "
        f"start, recording and checkpoints: {num(ceiling['stacked_best'] / case['alone_steps_per_second'], 2)}×. "
        "That is what stacking the engine's operators reached here with every cost of the engine and the service "
        f"taken away, against the bar of {BAR}×.",
    ]


BENCHMARK = Benchmark(
    name="stacked",
    title="Stacked training: an experiment's seeds as one stack against one by one",
    summary="steps/s of eight seeds trained as one stack vs the same runs one after another, through the worker",
    run=run,
    render=render,
)
