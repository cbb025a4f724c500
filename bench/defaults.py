"""The first job a new user runs: every field but the data set at its default, through the real service.

Each job is submitted over HTTP and trained by a real worker (Celery, Postgres, Redis, checkpoints and
evaluation on), exactly as README.md's walk-through submits it. Beside the defaults, the same job with
the WGAN-GP paper's image settings, which were the defaults before: the contrast is why the 2-D toys
have their own.
"""

from __future__ import annotations

import statistics
from typing import Any

from bench.common import Benchmark, Context, Result, num, table, verdict
from bench.service_stack import metrics, parse_time, service_stack, wait_finished
from wgan.config import TrainSpec, resolve

BAR_W1 = 0.15
BAR_SECONDS = 150  # "about two minutes"
SEEDS = (0, 1, 2)
PAPER_IMAGE_SETTINGS: dict[str, Any] = {
    "loss": {"gp_weight": 10.0},
    "optimizer": {"lr": 1e-4, "betas": [0.0, 0.9]},
    "generator_ema": 0.0,
}

# (label, spec, whether the bar applies)
RUNS: tuple[tuple[str, dict[str, Any], bool], ...] = (
    *(
        (f"8gaussians, defaults, seed {seed}", {"dataset": {"name": "8gaussians"}, "seed": seed}, True)
        for seed in SEEDS
    ),
    (
        "8gaussians, the paper's image settings (λ 10, lr 1e-4, betas (0, 0.9), no average)",
        {"dataset": {"name": "8gaussians"}, **PAPER_IMAGE_SETTINGS},
        False,
    ),
    ("25gaussians, defaults", {"dataset": {"name": "25gaussians"}}, False),
    ("swissroll, defaults", {"dataset": {"name": "swissroll"}}, False),
)


def _one(client: Any, label: str, spec: dict[str, Any], barred: bool, ctx: Context) -> dict[str, Any]:
    body = {**spec, "steps": 200, "checkpoint_every": 100} if ctx.quick else spec
    submitted = client.post("/api/v1/jobs", json=body)
    submitted.raise_for_status()
    job = wait_finished(client, submitted.json()["id"], timeout=3600, poll=2.0)
    if job["status"] != "succeeded":
        raise RuntimeError(f"{label}: the job ended {job['status']}: {job['error']}")
    points = metrics(client, job["id"])
    evaluated = [p for p in points if p["exact_w1"] is not None]
    final = evaluated[-1]
    client.delete(f"/api/v1/jobs/{job['id']}")
    modes_total = 8 if "8gaussians" in label else 25 if "25gaussians" in label else None
    return {
        "label": label,
        "spec": job["spec"],
        "barred": barred,
        "steps": job["spec"]["steps"],
        "seconds": parse_time(job["finished_at"]) - parse_time(job["started_at"]),
        "steps_per_second": statistics.median(1 / p["seconds_per_step"] for p in points),
        # The stricter count (at least 20 % of a mode's share), as this benchmark has always reported.
        "curve": [
            {"step": p["step"], "exact_w1": p["exact_w1"], "modes": (p["measures"] or {}).get("modes_well_covered")}
            for p in evaluated
        ],
        "exact_w1": final["exact_w1"],
        "modes": (final["measures"] or {}).get("modes_well_covered"),
        "modes_total": modes_total,
    }


def _passes(row: dict[str, Any]) -> bool:
    return bool(row["exact_w1"] <= BAR_W1 and row["modes"] == row["modes_total"] and row["seconds"] <= BAR_SECONDS)


def run(ctx: Context) -> Result:
    rows = []
    # Threads as a worker picks them on its own (one for models this small): what a user gets.
    with service_stack(ctx, worker_torch_threads="0") as stack:
        stack.api()
        stack.worker()
        with stack.client() as client:
            for label, spec, barred in RUNS:
                rows.append(_one(client, label, spec, barred, ctx))
                print(f"  {label}: W1 {rows[-1]['exact_w1']:.4f}, {rows[-1]['seconds']:.0f} s", flush=True)
    defaults = resolve(TrainSpec.model_validate({"dataset": {"name": "8gaussians"}}), "points", (2,))
    return {
        "rows": rows,
        "defaults": defaults.model_dump(mode="json"),
        "passed": all(_passes(row) for row in rows if row["barred"]),
    }


def render(data: Result) -> str:
    d = data["defaults"]
    rows = [
        (
            row["label"],
            row["steps"],
            f"{row['seconds']:.0f} s",
            num(row["steps_per_second"], 1),
            num(row["exact_w1"], 4),
            "–" if row["modes_total"] is None else f"{int(row['modes'])}/{row['modes_total']}",
            verdict(_passes(row)) if row["barred"] else "(no bar)",
        )
        for row in data["rows"]
    ]
    steps = sorted({point["step"] for row in data["rows"] for point in row["curve"]})
    curve_rows = []
    for step in steps:
        cells = []
        for row in data["rows"]:
            found = next((p for p in row["curve"] if p["step"] == step), None)
            shown = "" if found is None else num(found["exact_w1"], 3)
            if found is not None and row["modes_total"] is not None:
                shown += f" ({int(found['modes'])})"
            cells.append(shown)
        curve_rows.append((step, *cells))
    return f"""\
README.md's first job, `{{"dataset": {{"name": "8gaussians"}}}}`, and the same on the other toys: every other field
at its default, submitted over HTTP and trained by a real worker (threads chosen by the worker, one for a
model this small), with its checkpoints and their evaluation (exact W1 between 2,000 generated and 2,000
real points; modes with at least 20 % of their share within 3σ). The defaults it resolves to: MLP
{d["model"]["hidden_dim"]}×{d["model"]["depth"]}, batch {d["batch_size"]}, {d["steps"]} steps, \
λ {d["loss"]["gp_weight"]}, Adam lr {d["optimizer"]["lr"]} betas {tuple(d["optimizer"]["betas"])}, \
n_critic {d["n_critic"]}, and samples from a moving average of the generator's weights \
(decay {d["generator_ema"]}; Yazıcı et al. 2019). λ 0.1 and the betas are the WGAN-GP
authors' toy script's; the learning rate and the average were chosen by measuring ("quality-sweep" below
changes each in turn). Time is the job's, from its start to its end,
checkpoints and evaluations included. Two real 2,000-point samples are 0.05–0.06 apart (the quality
benchmark's floor).

**Bar:** W1 ≤ {BAR_W1} and 8/8 modes within {BAR_SECONDS} s on every seed.

{table(["run", "steps", "time", "steps/s", "final exact W1", "modes", "bar"], rows)}

Overall: {verdict(bool(data["passed"]))}.

<details><summary>exact W1 (modes) at each checkpoint</summary>

{table(["step", *[row["label"] for row in data["rows"]]], curve_rows)}

</details>
"""


BENCHMARK = Benchmark(
    name="defaults",
    title="Defaults: the README's first job through the real service",
    summary="a job with every field at its default on each toy, through the worker, against the old defaults",
    run=run,
    render=render,
)
