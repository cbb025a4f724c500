"""Speed: the trainer (through assemble and Trainer.fit, metrics and checkpoints on) against the hand loop."""

from __future__ import annotations

import time
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.common import Benchmark, Context, Result, median, num, paired_ratios, table, verdict
from bench.pairs import (
    CASES,
    Case,
    HandSide,
    TrainerSide,
    calibrate,
    equivalence,
    make_hand_loop,
    make_run,
)

BAR = 1.0
PEAK_SIZE = 4096
PEAK_REPEATS = 6


def matmul_gflops(m: int, k: int, n: int, repeats: int) -> dict[str, float]:
    """fp32 matmul rate at the current thread count: best and median of `repeats` timed products."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    out = torch.empty(m, n)
    torch.mm(a, b, out=out)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        rates.append(2 * m * k * n / (time.perf_counter() - start) / 1e9)
    return {"best": max(rates), "median": median(rates)}


class _NoModuleTracking:
    parents = ("Global",)

    def __enter__(self) -> _NoModuleTracking:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class GlobalFlopCounter(FlopCounterMode):
    """FlopCounterMode without its per-module tracking, whose backward hooks refuse the
    `autograd.grad` on inputs that the gradient penalty takes."""

    def __init__(self) -> None:
        super().__init__(display=False)
        self.mod_tracker = _NoModuleTracking()  # type: ignore[assignment]


def flops_per_step(case: Case) -> dict[str, float]:
    """Matmul/conv FLOPs of one generator step (n_critic critic updates and one generator update)."""
    run = make_run(case)
    hand = make_hand_loop(run)
    with GlobalFlopCounter() as counter:
        hand.train(1)
    hand_flops = counter.get_total_flops()
    run.trainer.spec = run.trainer.spec.model_copy(update={"steps": 1})
    with GlobalFlopCounter() as counter:
        run.trainer.fit()
    return {"hand": float(hand_flops), "trainer": float(counter.get_total_flops())}


def compare(case: Case, ctx: Context) -> dict[str, Any]:
    rounds = 2 if ctx.quick else 8
    target = 1.0 if ctx.quick else 5.0
    run = make_run(case)
    trainer_side = TrainerSide(run.trainer)
    hand_side = HandSide(make_hand_loop(run))
    try:
        steps = calibrate(trainer_side, target)
        calibrate(hand_side, target)
        trainer_rates: list[float] = []
        hand_rates: list[float] = []
        for round_index in range(rounds):  # A B B A A B ...: neighbours share the machine's load
            if round_index % 2 == 0:
                trainer_rates.append(trainer_side(steps))
                hand_rates.append(hand_side(steps))
            else:
                hand_rates.append(hand_side(steps))
                trainer_rates.append(trainer_side(steps))
        checkpoint_s = trainer_side.checkpoint_seconds()
        saved, streamed = trainer_side.saved, len(trainer_side.streamed)
    finally:
        trainer_side.close()
    ratios = paired_ratios(trainer_rates, hand_rates)
    flops = flops_per_step(case)
    trainer_median = median(trainer_rates)
    return {
        "case": case.name,
        "title": case.title,
        "has_bar": case.has_bar,
        "steps_per_trial": steps,
        "rounds": rounds,
        "trainer_steps_per_s": trainer_rates,
        "hand_steps_per_s": hand_rates,
        "trainer_median": trainer_median,
        "hand_median": median(hand_rates),
        "ratio_median": median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "passed": median(ratios) >= BAR,
        "gflop_per_step": flops["hand"] / 1e9,
        "gflop_per_step_trainer": flops["trainer"] / 1e9,
        "trainer_gflops": flops["trainer"] / 1e9 * trainer_median,
        "hand_gflops": flops["hand"] / 1e9 * median(hand_rates),
        "checkpoint_seconds": checkpoint_s,
        "checkpoint_share_at_500": checkpoint_s / (500 / trainer_median + checkpoint_s),
        "checkpoints_written_in_trials": saved,
        "metric_points_streamed": streamed,
        "equivalence": equivalence(case, steps=2),
    }


def run(ctx: Context) -> Result:
    peak_before = matmul_gflops(PEAK_SIZE, PEAK_SIZE, PEAK_SIZE, 2 if ctx.quick else PEAK_REPEATS)
    toy_gemm = matmul_gflops(256, 512, 512, 50 if ctx.quick else 400)
    cases = [compare(case, ctx) for case in CASES]
    peak_after = matmul_gflops(PEAK_SIZE, PEAK_SIZE, PEAK_SIZE, 2 if ctx.quick else PEAK_REPEATS)
    peak = max(peak_before["best"], peak_after["best"])
    for result in cases:
        result["trainer_share_of_peak"] = result["trainer_gflops"] / peak
        result["hand_share_of_peak"] = result["hand_gflops"] / peak
    return {
        "threads": torch.get_num_threads(),
        "peak_gflops": peak,
        "peak_measurements": {"before": peak_before, "after": peak_after, "size": PEAK_SIZE},
        "toy_gemm_gflops": toy_gemm,
        "cases": cases,
        "passed": all(result["passed"] for result in cases if result["has_bar"]),
    }


def render(data: Result) -> str:
    cases = data["cases"]
    rows = [
        (
            c["title"] + ("" if c["has_bar"] else " *(no bar)*"),
            num(c["trainer_median"], 2),
            num(c["hand_median"], 2),
            f"**{c['ratio_median']:.3f}×** ({c['ratio_min']:.3f}–{c['ratio_max']:.3f})",
            verdict(c["passed"]) if c["has_bar"] else "–",
        )
        for c in cases
    ]
    speed = table(
        ["case", "trainer steps/s", "hand loop steps/s", "ratio (median of pairs, range)", f"bar ≥ {BAR}×"], rows
    )
    peak = data["peak_gflops"]
    flop_rows = [
        (
            c["case"],
            num(c["gflop_per_step"], 2),
            num(c["trainer_gflops"], 1),
            f"{100 * c['trainer_share_of_peak']:.0f}%",
            num(c["hand_gflops"], 1),
            f"{100 * c['hand_share_of_peak']:.0f}%",
        )
        for c in cases
    ]
    flops = table(
        ["case", "GFLOP per generator step", "trainer GFLOP/s", "of peak", "hand loop GFLOP/s", "of peak"], flop_rows
    )
    check_rows = [
        (
            c["case"],
            c["steps_per_trial"],
            c["rounds"],
            f"{1000 * c['checkpoint_seconds']:.0f} ms",
            f"{100 * c['checkpoint_share_at_500']:.2f}%",
            f"{c['equivalence']['generator_max_abs_diff']:.1e} / {c['equivalence']['critic_max_abs_diff']:.1e}",
        )
        for c in cases
    ]
    checks = table(
        [
            "case",
            "steps per trial",
            "pairs",
            "one checkpoint",
            "its share at every 500 steps",
            "max |Δparam| G / D after 2 steps from the same start",
        ],
        check_rows,
    )
    toy = data["toy_gemm_gflops"]
    counts = ", ".join(f"{c['case']} {c['gflop_per_step_trainer']:.2f} vs {c['gflop_per_step']:.2f}" for c in cases)
    if all(abs(c["gflop_per_step_trainer"] / c["gflop_per_step"] - 1) < 1e-6 for c in cases):
        same_flops = f"The trainer's FLOP count per step equals the hand loop's in every case ({counts} GFLOP)."
    else:
        same_flops = f"FLOPs per step, trainer vs hand loop: {counts} GFLOP."
    return f"""\
The trainer runs as the worker runs it: `wgan.assemble` builds it from the spec, `Trainer.fit` drives it
with `log_every=10` (each metric point serialised to JSON, as the worker streams it) and
`checkpoint_every=500` (safetensors, fsync'd, to a temp dir); `evaluate` is off, as the exact W1 is not
part of a training step. The hand loop is `bench/handloop.py`, in the style of gan_toy.py: the same
networks (same builders, same seed), the same loss, optimizer and batch, drawing its random numbers
in the trainer's order, with no metrics and no checkpoints. Both run in one process at
{data.get("threads", "the same number of")} torch threads. Trials alternate, trainer, hand loop, hand loop,
trainer, trainer, hand loop … (so that neither side always goes first), each of the same number of generator
steps (about 5 s); the ratio is
trainer ÷ hand loop in each adjacent pair, and the table gives the median. wgan-clip uses the constant
schedule (`n_critic` 5 throughout) so that every window does the same work.

{speed}

Overall: {verdict(data["passed"])} (every case with a bar at ≥ {BAR}×).

**FLOP/s.** Matmul and convolution FLOPs per generator step counted with
`torch.utils.flop_counter.FlopCounterMode` (elementwise work not counted). Peak: the best of
{PEAK_REPEATS} fp32 {PEAK_SIZE}×{PEAK_SIZE} matmuls, measured before and after the cases,
**{peak:.0f} GFLOP/s**; a 256×512 @ 512×512 product (the toy's layer shape) reaches
{toy["best"]:.0f} GFLOP/s at best, {toy["median"]:.0f} median.

{flops}

**Checks.** {same_flops}
Trained two steps from the same start, the two give the same parameters up to rounding (last column):
the engine's fused Adam, foreach RMSprop and single critic pass over cat(real, fake) sum in another
order than the hand loop's plain optimizers and two critic passes, and on images the hand loop
interpolates as gan_toy.py does, `eps * real + (1 - eps) * fake`, where the engine uses `torch.lerp`.
The larger DCGAN differences are RMSprop's and Adam's first steps dividing by a near-zero second
moment, where a rounding difference in a tiny gradient becomes a full-size step.

{checks}
"""


BENCHMARK = Benchmark(
    name="speed",
    title="Speed: the trainer against a minimal hand-written loop",
    summary="trainer ÷ hand loop steps/s, interleaved, same model, loss and batch; FLOP/s vs peak",
    run=run,
    render=render,
)
