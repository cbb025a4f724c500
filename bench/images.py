"""Quality on real images, measured as every job is: digits and MNIST, WGAN-GP against WGAN and the vanilla GAN.

The evaluation is the engine's own (wgan.evaluation.Evaluator with wgan.classifier's judge), the one the
worker runs at each checkpoint of every job: the exact W1 in data space, and a classifier's class
coverage, KL of the class histogram to uniform and Fréchet distance against the real set taken through
the same pipeline, beside the floor of real images at the same N. On MNIST the three loss kinds share one
step budget, which is what WGAN-GP fills in about 20 minutes on this CPU, so that the WGAN paper's
Figures 3–4 can be read off real digits: does the critic's estimate fall as samples improve, and does the
vanilla loss not?
"""

from __future__ import annotations

import io
import math
import time
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr

from bench.common import Benchmark, Context, Result, num, progress, relative, table, verdict
from wgan import Hooks, MetricPoint, TrainSpec, assemble
from wgan.classifier import LABELLED, class_histogram, classify, to_native, train_classifier
from wgan.evaluation import EVAL_IMAGES
from wgan.render import encode_png, image_grid, to_uint8

GRID_SAMPLES = 64
GRID_ZOOM = 2
BATCH = 64
MNIST_STEPS = 2000
DIGITS_STEPS = 3000
EVERY = 200
BAR_CLASSES = 10
BAR_KL = {"digits": 0.1, "mnist": 0.05}


# (name, data set, title, model, loss, has a bar)
RUNS: tuple[tuple[str, str, str, dict[str, Any], dict[str, Any], bool], ...] = (
    ("mnist-gp", "mnist", "MNIST 28×28, DCGAN width 32, wgan-gp", {"arch": "dcgan", "hidden_dim": 32}, {}, True),
    (
        "mnist-clip",
        "mnist",
        "MNIST 28×28, DCGAN width 32, wgan-clip",
        {"arch": "dcgan", "hidden_dim": 32},
        {"kind": "wgan-clip"},
        False,
    ),
    (
        "mnist-vanilla",
        "mnist",
        "MNIST 28×28, DCGAN width 32, vanilla GAN",
        {"arch": "dcgan", "hidden_dim": 32},
        {"kind": "vanilla"},
        False,
    ),
    (
        "digits-gp",
        "digits",
        "digits 16×16, DCGAN width 32, wgan-gp",
        {"arch": "dcgan", "image_size": 16, "hidden_dim": 32},
        {},
        True,
    ),
    (
        "digits-mlp-clip",
        "digits",
        "digits 16×16, MLP 512×3 generator without batch norm, wgan-clip (the WGAN paper's claim)",
        {"arch": "mlp", "image_size": 16, "generator_batch_norm": False},
        {"kind": "wgan-clip"},
        False,
    ),
)


def _spec(dataset: str, model: dict[str, Any], loss: dict[str, Any], steps: int) -> TrainSpec:
    return TrainSpec.model_validate(
        {
            "dataset": {"name": dataset},
            "model": model,
            "loss": loss,
            "batch_size": BATCH,
            "steps": steps,
            "seed": 0,
            "checkpoint_every": EVERY,
            "log_every": 50,
            "device": "cpu",
        }
    )


def _grid(images: np.ndarray) -> bytes:
    pixels = image_grid(to_uint8(images)).repeat(GRID_ZOOM, axis=0).repeat(GRID_ZOOM, axis=1)
    return encode_png(np.ascontiguousarray(pixels))


def _spearman(a: list[float], b: list[float]) -> float | None:
    if len(a) < 3 or len(set(a)) < 2 or len(set(b)) < 2:
        return None
    rho = float(spearmanr(a, b).statistic)
    return rho if math.isfinite(rho) else None


def train_one(
    name: str, dataset: str, title: str, model: dict[str, Any], loss: dict[str, Any], ctx: Context
) -> dict[str, Any]:
    steps = ctx.steps(MNIST_STEPS if dataset == "mnist" else DIGITS_STEPS, 2 * EVERY)
    run = assemble(_spec(dataset, model, loss, steps), eval_examples=EVAL_IMAGES)
    evaluator = run.evaluator
    assert evaluator is not None
    assert evaluator.judge is not None
    points: list[MetricPoint] = []
    start = time.perf_counter()
    run.trainer.fit(Hooks(on_metrics=progress(name, steps, 500, points.append), evaluate=evaluator))
    seconds = time.perf_counter() - start
    assert run.spec.model.latent_dim is not None
    final = evaluator.samples(run.trainer.sampling_generator, run.spec.model.latent_dim, run.trainer.device)
    classes, _ = classify(evaluator.judge.net, to_native(final, evaluator.judge.labelled.side))
    image = ctx.docs_dir / f"images-{name}.png"
    image.parent.mkdir(parents=True, exist_ok=True)
    image.write_bytes(_grid(final[:GRID_SAMPLES]))
    series = [
        {"step": p.step, "wasserstein_estimate": p.wasserstein_estimate, "critic_loss": p.critic_loss, **p.evaluation}
        for p in points
        if p.evaluation
    ]
    estimate = [s["wasserstein_estimate"] for s in series]
    last = series[-1]
    return {
        "name": name,
        "dataset": dataset,
        "title": title,
        "spec": run.spec.model_dump(mode="json"),
        "seconds": seconds,
        "steps_per_s": steps / seconds,
        "series": series,
        "final": last,
        "best_frechet": min(s["frechet"] for s in series),
        "histogram": [float(h) for h in class_histogram(classes)],
        "spearman_w1": _spearman(estimate, [s["exact_w1"] for s in series]),
        "spearman_frechet": _spearman(estimate, [s["frechet"] for s in series]),
        "image": relative(image),
    }


def _passes(row: dict[str, Any]) -> bool:
    final = row["final"]
    return bool(final["classes_covered"] >= BAR_CLASSES and final["class_kl"] <= BAR_KL[row["dataset"]])


def _curves(rows: list[dict[str, Any]], path: Any) -> str | None:
    """The WGAN paper's Figures 3–4 on MNIST: each loss's critic estimate beside the data-space W1 and the FD."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    mnist = [row for row in rows if row["dataset"] == "mnist"]
    figure, axes = plt.subplots(2, len(mnist), figsize=(4.2 * len(mnist), 6.4), squeeze=False)
    for column, row in enumerate(mnist):
        steps = [s["step"] for s in row["series"]]
        top, bottom = axes[0][column], axes[1][column]
        top.plot(steps, [s["wasserstein_estimate"] for s in row["series"]], color="#c2410c", label="critic's estimate")
        top.set_title(row["title"].split(", ")[-1])
        top.set_ylabel("critic's estimate", color="#c2410c")
        twin = top.twinx()
        twin.plot(steps, [s["exact_w1"] for s in row["series"]], color="#1d4ed8", label="exact W1 (data space)")
        twin.set_ylabel("exact W1", color="#1d4ed8")
        bottom.plot(steps, [s["frechet"] for s in row["series"]], color="#15803d", label="classifier FD")
        bottom.axhline(row["final"]["frechet_real"], color="#888", linestyle="--", label="real images (floor)")
        bottom.set_xlabel("generator step")
        bottom.set_ylabel("Fréchet distance")
        bottom.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return relative(path)


def run(ctx: Context) -> Result:
    accuracy = {name: train_classifier(labelled)[1] for name, labelled in LABELLED.items()}
    rows = []
    for name, dataset, title, model, loss, has_bar in RUNS:
        print(f"images: {name}", flush=True)
        row = train_one(name, dataset, title, model, loss, ctx)
        row["has_bar"] = has_bar
        row["passed"] = _passes(row)
        rows.append(row)
    return {
        "rows": rows,
        "classifier_accuracy": accuracy,
        "figure": _curves(rows, ctx.docs_dir / "images-mnist-curves.png"),
        "threads": torch.get_num_threads(),
        "passed": all(row["passed"] for row in rows if row["has_bar"]),
    }


def render(data: Result) -> str:
    rows = data["rows"]
    summary = table(
        [
            "run",
            "steps",
            "classes",
            "KL to uniform",
            "FD (final / best)",
            "FD of real images",
            "exact W1",
            "Spearman(estimate, W1)",
            "Spearman(estimate, FD)",
            "min",
            "bar",
        ],
        [
            (
                r["title"],
                r["spec"]["steps"],
                f"{int(r['final']['classes_covered'])}/10",
                num(r["final"]["class_kl"], 4),
                f"{num(r['final']['frechet'], 1)} / {num(r['best_frechet'], 1)}",
                num(r["final"]["frechet_real"], 2),
                num(r["final"]["exact_w1"], 2),
                num(r["spearman_w1"], 2),
                num(r["spearman_frechet"], 2),
                f"{r['seconds'] / 60:.0f}",
                verdict(r["passed"]) if r["has_bar"] else "(no bar)",
            )
            for r in rows
        ],
    )
    histograms = table(
        ["run", *[str(c) for c in range(10)]], [(r["name"], *[f"{h:.3f}" for h in r["histogram"]]) for r in rows]
    )
    series = "\n\n".join(
        f"<details><summary>{r['name']}: every {EVERY} steps</summary>\n\n"
        + table(
            ["step", "critic's estimate", "exact W1", "classes", "KL to uniform", "FD"],
            [
                (
                    s["step"],
                    num(s["wasserstein_estimate"], 4),
                    num(s["exact_w1"], 3),
                    int(s["classes_covered"]),
                    num(s["class_kl"], 4),
                    num(s["frechet"], 1),
                )
                for s in r["series"]
            ],
        )
        + "\n\n</details>"
        for r in rows
    )
    images = " ".join(f"![{r['name']}]({r['image']})" for r in rows)
    accuracy = ", ".join(f"{name} {100 * value:.1f}%" for name, value in data["classifier_accuracy"].items())
    figure = f"![critic's estimate, exact W1 and FD over training on MNIST]({data['figure']})" if data["figure"] else ""
    return f"""\
Every run is measured as the service measures every job, at each checkpoint ({EVERY} steps) by the engine's
evaluator: {EVAL_IMAGES} generated images from fixed latents against {EVAL_IMAGES} fixed real ones. Exact W1 in
data space (POT's exact solver on the flattened [−1, 1] pixels: the distance the WGAN critic estimates); a
classifier trained on the real set (held-out accuracy: {accuracy}) gives the classes covered, the KL of
the class histogram to uniform, and the Fréchet distance in its 128-wide feature space (FID's formula,
Heusel et al. 2017), its reference the real set taken through the same pipeline as the samples; "FD of real
images" is {EVAL_IMAGES} real images against it: the floor. Batch {BATCH}, seed 0, each loss kind's paper
defaults (wgan-gp: λ 10, Adam 1e-4 betas (0, 0.9), n_critic 5, layer norm in the critic; wgan-clip: RMSprop
5e-5, clip 0.01, the paper's schedule; vanilla: Adam 2e-4 betas (0.5, 0.999), one critic step). On MNIST the
three share one budget of {MNIST_STEPS} generator steps: what wgan-gp fills in about 20 minutes here.
Spearman is the rank correlation of the critic's estimate with each measure over the checkpoints (for
vanilla the "estimate" is a difference of logits, not a distance).

**Bars:** 10/10 classes and KL ≤ 0.05 for MNIST wgan-gp, ≤ 0.1 for digits wgan-gp.

{summary}

Overall: {verdict(bool(data["passed"]))}.

{figure}

Class histograms of the final samples:

{histograms}

Samples (the first {GRID_SAMPLES} of the final {EVAL_IMAGES}):

{images}

{series}
"""


BENCHMARK = Benchmark(
    name="images",
    title="Quality on real images: MNIST and digits",
    summary="wgan-gp, wgan-clip and vanilla on MNIST and digits, measured as every job is (W1, classes, KL, FD)",
    run=run,
    render=render,
)
