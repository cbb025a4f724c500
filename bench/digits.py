"""Digits: class coverage, KL to uniform and Fréchet distance of generated digits, plus a 32×32 speed run."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import numpy as np
import torch

from bench.common import Benchmark, Context, Result, num, progress, relative, table, verdict
from wgan import Hooks, MetricPoint, Trainer, TrainSpec, assemble
from wgan.classifier import HOLDOUT, TRAIN_SEED, DigitNet, frechet, load_classifier, score_digits, to_native
from wgan.data.sources import TensorSource, digits_array, digits_labels, open_builtin
from wgan.render import encode_png, image_grid, to_uint8
from wgan.sampling import generate, latent

STEPS = 3000
EVAL_EVERY = 500
EVAL_SAMPLES = 1000
EVAL_SEED = 4321
GRID_SAMPLES = 64
GRID_ZOOM = 3
IMAGE_SIZE = 16
BATCH = 64
BAR_CLASSES = 10
BAR_KL = 0.1


def _spec(model: dict[str, Any], loss: dict[str, Any], steps: int, **extra: Any) -> TrainSpec:
    return TrainSpec.model_validate(
        {
            "dataset": {"name": "digits"},
            "model": model,
            "loss": loss,
            "batch_size": BATCH,
            "steps": steps,
            "seed": 0,
            "checkpoint_every": EVAL_EVERY,
            "log_every": 100,
            "device": "cpu",
            **extra,
        }
    )


# (name, description, model, loss, has the bar)
RUNS: tuple[tuple[str, str, dict[str, Any], dict[str, Any], bool], ...] = (
    (
        "dcgan16-gp",
        "DCGAN 16×16, base width 32, wgan-gp",
        {"arch": "dcgan", "image_size": 16, "hidden_dim": 32},
        {"kind": "wgan-gp"},
        True,
    ),
    (
        "mlp16-gp",
        "MLP 512×3 16×16, generator without batch norm, wgan-gp",
        {"arch": "mlp", "image_size": 16, "generator_batch_norm": False},
        {"kind": "wgan-gp"},
        True,
    ),
    (
        "mlp16-clip",
        "MLP 512×3 16×16, generator without batch norm, wgan-clip (the WGAN paper's claim)",
        {"arch": "mlp", "image_size": 16, "generator_batch_norm": False},
        {"kind": "wgan-clip"},
        False,
    ),
)


def generated(trainer: Trainer, n: int) -> np.ndarray:
    """`n` samples for a fixed latent seed, in eval mode as sampling runs them."""
    assert trainer.spec.model.latent_dim is not None
    z = torch.from_numpy(latent(EVAL_SEED, n, trainer.spec.model.latent_dim))
    generator = trainer.sampling_generator
    was_training = generator.training
    generator.eval()
    try:
        with torch.no_grad():
            return generate(generator, z).numpy()
    finally:
        generator.train(was_training)


def features(net: DigitNet, images: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        _, out = net(to_native(images))
    return out.numpy().astype(np.float64)


def pipeline_features(net: DigitNet) -> np.ndarray:
    """Classifier features of all real digits as the generator is trained on them (upscaled to 16×16),
    taken back to 8×8 the way generated images are: the reference a Fréchet distance should use."""
    source = open_builtin("digits", torch.device("cpu"), IMAGE_SIZE, 1)
    assert isinstance(source, TensorSource)
    return features(net, source.data.numpy())


def judge(images: np.ndarray, net: DigitNet, reference: np.ndarray) -> dict[str, Any]:
    """score_digits, plus the Fréchet distance against the real digits through the same resizing."""
    scores = asdict(score_digits(images, net))
    scores["frechet_same_pipeline"] = frechet(features(net, images), reference)
    return scores


def digit_evaluator(net: DigitNet, reference: np.ndarray) -> Any:
    def evaluate(trainer: Trainer) -> dict[str, float]:
        scores = judge(generated(trainer, EVAL_SAMPLES), net, reference)
        return {
            "classes_found": float(scores["classes_found"]),
            "kl_to_uniform": scores["kl_to_uniform"],
            "frechet_distance": scores["frechet_distance"],
            "frechet_same_pipeline": scores["frechet_same_pipeline"],
        }

    return evaluate


def grid_image(images: np.ndarray) -> bytes:
    """A sample grid, each pixel shown as GRID_ZOOM × GRID_ZOOM so that 16 px digits can be read."""
    pixels = image_grid(to_uint8(images)).repeat(GRID_ZOOM, axis=0).repeat(GRID_ZOOM, axis=1)
    return encode_png(np.ascontiguousarray(pixels))


def train_one(
    name: str, title: str, model: dict[str, Any], loss: dict[str, Any], ctx: Context, reference: np.ndarray
) -> dict[str, Any]:
    net = load_classifier()
    run = assemble(_spec(model, loss, ctx.steps(STEPS, EVAL_EVERY)))
    points: list[MetricPoint] = []
    start = time.perf_counter()
    on_metrics = progress(name, run.spec.steps, 500, points.append)
    run.trainer.fit(Hooks(on_metrics=on_metrics, evaluate=digit_evaluator(net, reference)))
    seconds = time.perf_counter() - start
    final = generated(run.trainer, EVAL_SAMPLES)
    scores = judge(final, net, reference)
    image = ctx.docs_dir / f"digits-{name}.png"
    image.parent.mkdir(parents=True, exist_ok=True)
    image.write_bytes(grid_image(final[:GRID_SAMPLES]))
    series = [
        {
            "step": p.step,
            "wasserstein_estimate": p.wasserstein_estimate,
            "critic_loss": p.critic_loss,
            **{k: v for k, v in p.evaluation.items()},
        }
        for p in points
        if p.evaluation
    ]
    # Training rate per log interval (the engine leaves evaluation time out of seconds_per_step).
    rates = [{"step": p.step, "steps_per_s": 1 / p.seconds_per_step} for p in points]
    return {
        "name": name,
        "title": title,
        "spec": run.spec.model_dump(mode="json"),
        "seconds": seconds,
        "steps_per_s": run.spec.steps / seconds,
        "final": scores,
        "series": series,
        "rates": rates,
        "image": relative(image),
    }


def real_floor(net: DigitNet, reference: np.ndarray) -> dict[str, Any]:
    """The same scores for real digits taken through the same 8 → 16 → 8 resizing: the best attainable."""
    source = open_builtin("digits", torch.device("cpu"), IMAGE_SIZE, 1)
    real = source.reference(EVAL_SAMPLES, EVAL_SEED).numpy()
    order = torch.randperm(len(digits_labels()), generator=torch.Generator().manual_seed(TRAIN_SEED))
    test = order[:HOLDOUT]
    with torch.no_grad():
        logits, _ = net(torch.from_numpy(digits_array())[test])
    accuracy = float((logits.argmax(1) == torch.from_numpy(digits_labels())[test]).float().mean())
    native = features(net, digits_array())
    return {
        "scores": judge(real, net, reference),
        "native_sample_frechet": frechet(features(net, source_native_sample()), native),
        "classifier_holdout_accuracy": accuracy,
    }


def source_native_sample() -> np.ndarray:
    """EVAL_SAMPLES real 8×8 digits, not resized (the engine's Fréchet reference compared with itself)."""
    index = torch.randint(len(digits_labels()), (EVAL_SAMPLES,), generator=torch.Generator().manual_seed(EVAL_SEED))
    return digits_array()[index.numpy()]


def speed_run(kind: str, ctx: Context) -> dict[str, Any]:
    """A short run of the 32×32 DCGAN at width 64 (the default), for its steps/s only."""
    steps = ctx.steps(12, 3)
    warmup = 2
    spec = _spec(
        {"arch": "dcgan", "image_size": 32, "hidden_dim": 64},
        {"kind": kind, "critic_schedule": "constant"} if kind == "wgan-clip" else {"kind": kind},
        warmup + steps,
        evaluate=False,
    ).model_copy(update={"log_every": 1, "checkpoint_every": 10_000})
    run = assemble(spec)
    times: list[float] = []
    run.trainer.fit(Hooks(on_metrics=lambda _: times.append(time.perf_counter())))
    return {"kind": kind, "steps": steps, "steps_per_s": steps / (times[-1] - times[warmup - 1])}


def run(ctx: Context) -> Result:
    net = load_classifier()
    reference = pipeline_features(net)
    floor = real_floor(net, reference)
    runs = []
    for name, title, model, loss, has_bar in RUNS:
        print(f"digits: {name}", flush=True)
        result = train_one(name, title, model, loss, ctx, reference)
        result["has_bar"] = has_bar
        final = result["final"]
        result["passed"] = final["classes_found"] >= BAR_CLASSES and final["kl_to_uniform"] <= BAR_KL
        runs.append(result)
    speed = [speed_run(kind, ctx) for kind in ("wgan-gp", "wgan-clip")]
    return {
        "real": floor,
        "runs": runs,
        "dcgan32_speed": speed,
        "passed": all(r["passed"] for r in runs if r["has_bar"]),
    }


def render(data: Result) -> str:
    runs = data["runs"]
    real = data["real"]["scores"]
    rows = [
        (
            r["title"] + ("" if r["has_bar"] else " *(no bar)*"),
            f"{r['final']['classes_found']}/10",
            num(r["final"]["kl_to_uniform"], 4),
            num(r["final"]["frechet_distance"], 1),
            num(r["final"]["frechet_same_pipeline"], 1),
            num(r["steps_per_s"], 2),
            verdict(r["passed"]) if r["has_bar"] else ("(would pass)" if r["passed"] else "(would fail)"),
        )
        for r in runs
    ]
    rows.append(
        (
            "real digits (8 → 16 → 8), the floor",
            f"{real['classes_found']}/10",
            num(real["kl_to_uniform"], 4),
            num(real["frechet_distance"], 1),
            num(real["frechet_same_pipeline"], 1),
            "–",
            "–",
        )
    )
    histograms = table(
        ["run", *[str(c) for c in range(10)]],
        [(r["name"], *[f"{h:.3f}" for h in r["final"]["histogram"]]) for r in runs]
        + [("real", *[f"{h:.3f}" for h in real["histogram"]])],
    )
    series = "\n\n".join(
        f"<details><summary>{r['name']}: every {EVAL_EVERY} steps</summary>\n\n"
        + table(
            ["step", "classes", "KL to uniform", "Fréchet (engine)", "Fréchet (same pipeline)", "critic's estimate"],
            [
                (
                    s["step"],
                    int(s["classes_found"]),
                    num(s["kl_to_uniform"], 4),
                    num(s["frechet_distance"], 1),
                    num(s["frechet_same_pipeline"], 1),
                    num(s["wasserstein_estimate"], 4),
                )
                for s in r["series"]
            ],
        )
        + "\n\n</details>"
        for r in runs
    )
    images = " ".join(f"![{r['name']}]({r['image']})" for r in runs)
    summary = table(
        ["run", "classes", "KL to uniform (≤ 0.1)", "Fréchet (engine)", "Fréchet (same pipeline)", "steps/s", "bar"],
        rows,
    )
    rate_steps = sorted({p["step"] for r in runs for p in r["rates"] if p["step"] % EVAL_EVERY == 0})
    rate_rows = [
        (
            step,
            *[next((num(p["steps_per_s"], 2) for p in r["rates"] if p["step"] == step), "") for r in runs],
        )
        for step in rate_steps
    ]
    rates = table(["step", *[r["name"] for r in runs]], rate_rows)
    speed = ", ".join(f"{s['kind']} **{s['steps_per_s']:.2f} steps/s**" for s in data["dcgan32_speed"])
    return f"""\
scikit-learn's 8×8 digits upscaled to 16×16, batch {BATCH}, {runs[0]["spec"]["steps"]} generator steps, seed 0,
each loss kind's paper defaults (wgan-gp: λ 10, Adam 1e-4 with betas (0, 0.9), n_critic 5, layer norm in the
DCGAN critic; wgan-clip: RMSprop 5e-5, clip 0.01, the paper's critic schedule). {EVAL_SAMPLES} samples from a
fixed latent seed, generator in eval mode, are judged by `wgan.classifier.score_digits` (a small convnet trained
on the real 8×8 digits, {100 * data["real"]["classifier_holdout_accuracy"]:.1f}% on its held-out slice):
classes found, KL of the class histogram to uniform, Fréchet distance in its 128-wide feature space. The MLP
runs use arch `mlp` for both networks (the engine has no MLP-generator-with-DCGAN-critic mix, which is what
the WGAN paper ran).

{summary}

Two Fréchet distances. "engine" is `score_digits`' own: generated images are resized to 8×8 and compared with
the *native* 8×8 digits. But the generator learns the digits upscaled to 16×16, and the 8 → 16 → 8 round trip
blurs them: real digits taken through it score {real["frechet_distance"]:.0f} on that measure (a sample of native
digits against all of them: {data["real"]["native_sample_frechet"]:.1f}). So that measure has a floor near
{real["frechet_distance"]:.0f} at 16×16, whatever the generator. "same pipeline" compares against all real digits
taken through the same resizing as the generated ones (computed here in `bench/digits.py`), where real digits
score {real["frechet_same_pipeline"]:.1f}.

Overall: {verdict(data["passed"])} (the runs with a bar: 10/10 classes and KL ≤ {BAR_KL}).

Class histograms of the final samples:

{histograms}

Samples (first {GRID_SAMPLES} of the final {EVAL_SAMPLES}):

{images}

{series}

<details><summary>training steps/s over each log interval (evaluation excluded)</summary>

{rates}

</details>

**DCGAN 32×32, width 64, batch 64 (speed only):** {speed}, through `Trainer.fit` with metrics every
step, {data["dcgan32_speed"][0]["steps"]} steps after 2 warm-up steps (wgan-clip with the constant schedule).
"""


BENCHMARK = Benchmark(
    name="digits",
    title="Digits",
    summary="classes found, KL to uniform and Fréchet distance of generated digits; DCGAN 32×32 steps/s",
    run=run,
    render=render,
)
