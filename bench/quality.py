"""Quality on the 2-D toys: exact W1, modes covered and the critic's estimate over training."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr

from bench.common import Benchmark, Context, Result, num, progress, relative, table, verdict
from wgan import Hooks, MetricPoint, TrainSpec, assemble
from wgan.data.sources import ToySource
from wgan.evaluation import EVAL_POINTS, EVAL_SEED, exact_w1, mode_coverage
from wgan.render import scatter_png

DATASETS = ("8gaussians", "25gaussians")
KINDS = ("wgan-gp", "wgan-clip", "vanilla")
SEEDS = (0, 1, 2)
STEPS = 3000
EVERY = 150
BAR_W1 = 0.08
BAR_SPEARMAN = 0.9
FLOOR_PAIRS = 5


def spec_for(dataset: str, kind: str, steps: int, seed: int = 0) -> TrainSpec:
    """Every field at its default but the loss kind: what the dashboard's presets submit on a toy."""
    return TrainSpec.model_validate(
        {
            "dataset": {"name": dataset},
            "loss": {"kind": kind},
            "steps": steps,
            "seed": seed,
            "checkpoint_every": EVERY,
            "log_every": EVERY,
            "evaluate": True,
            "device": "cpu",
        }
    )


def train_one(dataset: str, kind: str, seed: int, ctx: Context) -> dict[str, Any]:
    run = assemble(spec_for(dataset, kind, ctx.steps(STEPS, 2 * EVERY), seed))
    evaluator = run.evaluator
    assert evaluator is not None
    points: list[MetricPoint] = []
    initial = evaluator(run.trainer)
    start = time.perf_counter()
    on_metrics = progress(f"{dataset} {kind}", run.spec.steps, 600, points.append)
    run.trainer.fit(Hooks(on_metrics=on_metrics, evaluate=evaluator))
    seconds = time.perf_counter() - start
    assert run.spec.model.latent_dim is not None
    final_points = evaluator.samples(run.trainer.sampling_generator, run.spec.model.latent_dim, run.trainer.device)
    image = ctx.docs_dir / f"quality-{dataset}-{kind}.png"
    if seed == SEEDS[0]:
        image.parent.mkdir(parents=True, exist_ok=True)
        image.write_bytes(scatter_png(final_points, evaluator.reference))
    series = [
        {
            "step": p.step,
            "exact_w1": p.evaluation["exact_w1"],
            "modes_covered": int(p.evaluation["modes_covered"]),
            "modes_well_covered": int(p.evaluation["modes_well_covered"]),
            "high_quality": p.evaluation["high_quality"],
            "wasserstein_estimate": p.wasserstein_estimate,
            "critic_loss": p.critic_loss,
            "generator_loss": p.generator_loss,
            "gradient_penalty": p.gradient_penalty,
        }
        for p in points
    ]
    w1 = [p.evaluation["exact_w1"] for p in points]
    estimate = [row["wasserstein_estimate"] for row in series]
    rho = float(spearmanr(estimate, w1).statistic) if len(series) > 2 else float("nan")
    source = run.trainer.data
    assert isinstance(source, ToySource)
    assert source.mixture is not None
    return {
        "dataset": dataset,
        "kind": kind,
        "seed": seed,
        "spec": run.spec.model_dump(mode="json"),
        "seconds": seconds,
        "steps_per_s": run.spec.steps / seconds,
        "initial": initial,
        "series": series,
        "final_w1": w1[-1],
        "best_w1": min(w1),
        "final_modes": series[-1]["modes_covered"],
        "final_modes_well": series[-1]["modes_well_covered"],
        "modes_total": len(source.mixture.centers),
        "final_high_quality": series[-1]["high_quality"],
        "spearman": rho,
        "per_mode_counts": per_mode_counts(final_points, source),
        "image": relative(image),
    }


def per_mode_counts(points: np.ndarray, source: ToySource) -> dict[str, list[int]]:
    """Final samples per nearest centre: all of them, and those within 3σ of it."""
    assert source.mixture is not None
    centers = np.asarray(source.mixture.centers)
    distances = np.linalg.norm(points[:, None, :] - centers[None, :, :], axis=2)
    nearest = distances.argmin(axis=1)
    close = distances[np.arange(len(points)), nearest] <= 3 * source.mixture.std
    return {
        "nearest": np.bincount(nearest, minlength=len(centers)).tolist(),
        "within_3_std": np.bincount(nearest[close], minlength=len(centers)).tolist(),
    }


def noise_floor(dataset: str) -> dict[str, Any]:
    """W1 between independent real samples of the evaluation's size, and the coverage of a real sample."""
    source = ToySource(dataset, torch.device("cpu"))
    assert source.mixture is not None
    values = [
        exact_w1(source.reference(EVAL_POINTS, 100 + i).numpy(), source.reference(EVAL_POINTS, 200 + i).numpy())
        for i in range(FLOOR_PAIRS)
    ]
    reference = source.reference(EVAL_POINTS, EVAL_SEED).numpy()
    against_reference = [
        exact_w1(reference, source.reference(EVAL_POINTS, 500 + i).numpy()) for i in range(2 * FLOOR_PAIRS)
    ]
    coverage = mode_coverage(source.reference(EVAL_POINTS, 300).numpy(), source.mixture)
    return {
        "w1_pairs": values,
        "w1_mean": float(np.mean(values)),
        "w1_vs_eval_reference": against_reference,
        "w1_vs_eval_reference_mean": float(np.mean(against_reference)),
        "real_modes_covered": coverage.modes_covered,
        "real_modes_well_covered": coverage.modes_well_covered,
        "real_high_quality": coverage.high_quality,
        "std": source.mixture.std,
    }


def _mean_sd(values: list[float]) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _rows(runs: list[dict[str, Any]], dataset: str, kind: str) -> list[dict[str, Any]]:
    return [r for r in runs if r["dataset"] == dataset and r["kind"] == kind]


def run(ctx: Context) -> Result:
    floors = {dataset: noise_floor(dataset) for dataset in DATASETS}
    runs = []
    # One thread, as a worker trains models this small (worker.training.training_threads).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for dataset in DATASETS:
            for kind in KINDS:
                for seed in SEEDS:
                    print(f"quality: {dataset} {kind} seed {seed}", flush=True)
                    runs.append(train_one(dataset, kind, seed, ctx))
    finally:
        torch.set_num_threads(threads)
    gp8, gp25 = _rows(runs, "8gaussians", "wgan-gp"), _rows(runs, "25gaussians", "wgan-gp")
    bars = {
        "final_w1": _mean_sd([r["final_w1"] for r in gp8])[0] <= BAR_W1,
        "modes": all(r["final_modes"] == r["modes_total"] for r in gp8),
        "spearman": _mean_sd([r["spearman"] for r in gp8])[0] >= BAR_SPEARMAN,
        "modes_25": all(r["final_modes"] == r["modes_total"] for r in gp25),
    }
    return {"noise_floor": floors, "runs": runs, "bars": bars, "passed": all(bars.values())}


def _series_table(r: dict[str, Any]) -> str:
    rows = [
        (
            s["step"],
            num(s["exact_w1"], 4),
            f"{s['modes_covered']}/{r['modes_total']}",
            f"{s['modes_well_covered']}/{r['modes_total']}",
            num(s["high_quality"], 3),
            num(s["wasserstein_estimate"], 4),
            num(s["gradient_penalty"], 4) if s["gradient_penalty"] is not None else "–",
        )
        for s in r["series"]
    ]
    return table(["step", "exact W1", "modes", "well covered", "within 3σ", "critic's estimate", "penalty"], rows)


def _pm(values: list[float], digits: int) -> str:
    mean, sd = _mean_sd(values)
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def render(data: Result) -> str:
    runs = data["runs"]
    floors = data["noise_floor"]
    groups = [(d, k, _rows(runs, d, k)) for d in DATASETS for k in KINDS]
    summary = table(
        [
            "data",
            "loss",
            "final W1",
            "best W1",
            "modes (per seed)",
            "well covered (per seed)",
            "within 3σ",
            "Spearman(estimate, W1)",
            "steps/s",
        ],
        [
            (
                d,
                k,
                _pm([r["final_w1"] for r in rows], 4),
                _pm([r["best_w1"] for r in rows], 4),
                ", ".join(f"{r['final_modes']}" for r in rows) + f" of {rows[0]['modes_total']}",
                ", ".join(f"{r['final_modes_well']}" for r in rows),
                _pm([r["final_high_quality"] for r in rows], 3),
                _pm([r["spearman"] for r in rows], 3),
                num(float(np.mean([r["steps_per_s"] for r in rows])), 1),
            )
            for d, k, rows in groups
        ],
    )
    gp8, gp25 = _rows(runs, "8gaussians", "wgan-gp"), _rows(runs, "25gaussians", "wgan-gp")
    bars = data["bars"]
    bar_rows = [
        (
            "8gaussians: final exact W1 (mean)",
            f"≤ {BAR_W1}",
            _pm([r["final_w1"] for r in gp8], 4),
            verdict(bars["final_w1"]),
        ),
        (
            "8gaussians: modes covered, every seed",
            "8/8",
            ", ".join(str(r["final_modes"]) for r in gp8),
            verdict(bars["modes"]),
        ),
        (
            "8gaussians: Spearman(critic's estimate, exact W1) (mean)",
            f"≥ {BAR_SPEARMAN}",
            _pm([r["spearman"] for r in gp8], 3),
            verdict(bars["spearman"]),
        ),
        (
            "25gaussians: modes covered, every seed",
            "25/25",
            ", ".join(str(r["final_modes"]) for r in gp25),
            verdict(bars["modes_25"]),
        ),
    ]
    floor_rows = [
        (
            name,
            num(f["w1_mean"], 4),
            f"{min(f['w1_pairs']):.4f}–{max(f['w1_pairs']):.4f}",
            f"{f['w1_vs_eval_reference_mean']:.4f} ({min(f['w1_vs_eval_reference']):.4f}–"
            f"{max(f['w1_vs_eval_reference']):.4f})",
            f"{f['real_modes_covered']} / {f['real_modes_well_covered']}",
            num(f["real_high_quality"], 3),
            num(3 * f["std"], 4),
        )
        for name, f in floors.items()
    ]
    floor_table = table(
        [
            "data",
            "W1 between real samples (mean)",
            "range",
            "W1 of a real sample against the evaluator's reference (mean, range)",
            "modes a real sample covers / well covers",
            "within 3σ",
            "3σ radius",
        ],
        floor_rows,
    )
    first = [r for r in runs if r["seed"] == SEEDS[0]]
    images = " ".join(f"![{r['dataset']} {r['kind']}]({r['image']})" for r in first)
    details = "\n\n".join(
        f"<details><summary>{r['dataset']} {r['kind']}, seed {r['seed']}: every {EVERY} steps</summary>\n\n"
        f"{_series_table(r)}\n\nFinal samples per mode (nearest centre / within 3σ): "
        f"{r['per_mode_counts']['nearest']} / {r['per_mode_counts']['within_3_std']}\n\n</details>"
        for r in first
    )
    spec = gp8[0]["spec"]
    return f"""\
Each loss kind at its defaults on the toys, as the dashboard's presets submit it (MLP {spec["model"]["hidden_dim"]}×\
{spec["model"]["depth"]}, batch {spec["batch_size"]}, the generator's moving average {spec["generator_ema"]}), \
{spec["steps"]} generator steps, seeds {", ".join(map(str, SEEDS))} (mean ± sd), on one CPU thread. wgan-gp: λ \
{spec["loss"]["gp_weight"]}, Adam {spec["optimizer"]["lr"]} betas {tuple(spec["optimizer"]["betas"])}, n_critic \
{spec["n_critic"]}; wgan-clip its paper's (RMSprop 5e-5, clip 0.01, n_critic 5 with 100 critic steps for the first \
25 generator steps and every 500th); vanilla its (Adam 2e-4, betas (0.5, 0.999), one critic step). Every {EVERY}
steps, through the evaluator every job gets (`wgan.evaluation.Evaluator`): the exact W1 between 2,000 generated
and 2,000 real points (POT's `emd2`); modes covered as VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al.
2018) count them, a mode being the nearest centre of at least one sample within 3σ; "well covered", our stricter
count, when at least 20 % of a mode's expected share lies within 3σ of it; and the critic's Wasserstein estimate
E[D(real)] − E[D(fake)] as the trainer reports it, averaged over the {EVERY} steps' critic updates (for vanilla
a difference of logits, not a distance).

**Bars (wgan-gp):**

{table(["bar", "wanted", "measured", ""], bar_rows)}

Overall: {verdict(data["passed"])}.

{summary}

**Noise floor.** The W1 between two independent real samples of 2,000 points each ({FLOOR_PAIRS} pairs); the
W1 a perfect generator would score, that is a fresh real sample against the evaluator's fixed reference
({2 * FLOOR_PAIRS} samples); and the coverage measured on a real sample (the criteria's own ceiling). Most of
the floor is the multinomial spread of how many points fall in each mode: moving that surplus between modes
costs their distance apart.

{floor_table}

Final samples of seed {SEEDS[0]} (orange) over the real distribution (grey):

{images}

{details}
"""


BENCHMARK = Benchmark(
    name="quality",
    title="Quality on the 2-D toys",
    summary="exact W1, mode coverage and the critic's estimate over training, 8 and 25 Gaussians, three seeds",
    run=run,
    render=render,
)
