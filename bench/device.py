"""The CUDA path on a lent GPU, the engine alone: training, stacked training and sampling speed, and the
bit-for-bit properties the service rests on there.

A device machine has torch but not the service's web stack, and a session holds it for minutes, so this
imports nothing beyond the engine (wgan/) and bench.common, and runs in one call of a few minutes:

    scripts/device_checks.sh     (there: writes $OUT/device.json; here: copy it to bench/results/, then
                                  `python -m bench report`)

`python -m bench device --quick` runs the same code on this machine's CPU as a smoke test.

What it measures, each side by side in one process on the card:
- training: the engine's trainer, generator steps/s, fp32 and bf16, on the speed benchmark's cases;
- stacked: eight seeds of the stacked benchmark's bar case as one StackedTrainer against the same eight
  trained one after another (issue 15 asks for this figure on a GPU);
- sampling: passes of 64 rows per second, and sixteen requests for 4 samples each answered from one shared
  pass (wgan.sampling.generate_together, as app.sample_batches does) against one pass each (issue 17 §3);
- checks: a sample gets the same bits at every row offset of its chunk on the card (what sharing a pass
  rests on), and a channels-last DCGAN resumed from its checkpoint follows the run that never stopped.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.common import (
    Benchmark,
    Context,
    Result,
    environment,
    median,
    now_iso,
    num,
    save_result,
    table,
    verdict,
)
from bench.pairs import CASES_BY_NAME, Case, make_run
from wgan import Checkpoint, Hooks, Trainer, load_checkpoint, save_checkpoint
from wgan.sampling import SAMPLE_CHUNK, Sampler, generate_together, latent, load_sampler, sample
from wgan.stacked import StackedTrainer

# The speed benchmark's cases, built as it builds them (bench.pairs: the worker's metrics and checkpoints).
TRAINING = (CASES_BY_NAME["toy512-gp"], CASES_BY_NAME["dcgan32-gp"])
DCGAN = CASES_BY_NAME["dcgan32-gp"]
# The stacked benchmark's bar case (bench.stacked takes it from here: this module must import light).
STACK_BAR_SPEC: dict[str, Any] = {
    "dataset": {"name": "8gaussians"},
    "model": {"hidden_dim": 128, "depth": 3},
    "batch_size": 256,
}
STACKED = Case("stack128-gp", "8gaussians wgan-gp, MLP 128×3, batch 256", STACK_BAR_SPEC, False)
STACK_RUNS = 8
SMALL_N = 4
SMALL_REQUESTS = 16
# The bug the resume check guards against put the first step after a restore 1e-3 off (tests/wgan/test_trainer.py).
RESUME_TOLERANCE = 1e-4


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _trainer(case: Case, device: torch.device, steps: int, **changes: Any) -> Trainer:
    return make_run(case, device=device.type, steps=steps, **changes).trainer


def _fit_rate(trainer: Trainer, device: torch.device) -> float:
    """Generator steps/s of a whole fit (its first steps warm the kernels up as a job's do)."""
    _sync(device)
    started = time.perf_counter()
    trainer.fit(Hooks())
    _sync(device)
    return trainer.step / (time.perf_counter() - started)


def _training(device: torch.device, steps: int, rounds: int) -> list[dict[str, Any]]:
    rows = []
    for case in TRAINING:
        precisions = ("fp32", "bf16") if device.type == "cuda" else ("fp32",)
        _fit_rate(_trainer(case, device, max(2, steps // 10)), device)  # load the kernels once
        rates: dict[str, list[float]] = {p: [] for p in precisions}
        for _ in range(rounds):  # interleaved: both precisions see the same card
            for precision in precisions:
                rates[precision].append(_fit_rate(_trainer(case, device, steps, precision=precision), device))
        rows.append({"case": case.title, **{p: median(r) for p, r in rates.items()}})
    return rows


def _stacked(device: torch.device, steps: int, rounds: int) -> dict[str, Any]:
    def runs() -> list[Trainer]:
        return [_trainer(STACKED, device, steps, seed=seed) for seed in range(STACK_RUNS)]

    def one_by_one() -> float:
        trainers = runs()
        _sync(device)
        started = time.perf_counter()
        for trainer in trainers:
            trainer.fit(Hooks())
        _sync(device)
        return STACK_RUNS * steps / (time.perf_counter() - started)

    def stacked() -> float:
        stack = StackedTrainer(runs())
        _sync(device)
        started = time.perf_counter()
        stack.fit([Hooks() for _ in range(STACK_RUNS)])
        _sync(device)
        return STACK_RUNS * steps / (time.perf_counter() - started)

    stacked()  # load the kernels once
    alone, together = [], []
    for _ in range(rounds):
        alone.append(one_by_one())
        together.append(stacked())
    return {"runs": STACK_RUNS, "steps": steps, "one_by_one": median(alone), "stacked": median(together)}


def _dcgan_sampler(device: torch.device, directory: Path) -> Sampler:
    trainer = _trainer(DCGAN, device, 2)
    trainer.fit(Hooks())
    return load_sampler(save_checkpoint(directory, trainer.checkpoint()), device)


def _rate(work: Any, device: torch.device, seconds: float) -> float:
    """Calls of `work` per second over about `seconds` (each returns numpy, so it waits for the card)."""
    work()
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        work()
        calls += 1
    _sync(device)
    return calls / (time.perf_counter() - started)


def _sampling(sampler: Sampler, device: torch.device, seconds: float) -> dict[str, Any]:
    dim = sampler.spec.model.latent_dim
    assert dim is not None
    small = [latent(seed, SMALL_N, dim) for seed in range(SMALL_REQUESTS)]

    def one_each() -> None:
        for latents in small:
            generate_together(sampler, [latents])

    def shared() -> None:
        generate_together(sampler, small)

    return {
        "passes_per_second": _rate(lambda: sample(sampler, SAMPLE_CHUNK, 1), device, seconds),
        "small_alone": SMALL_REQUESTS * _rate(one_each, device, seconds),
        "small_shared": SMALL_REQUESTS * _rate(shared, device, seconds),
    }


def _offsets(sampler: Sampler) -> int:
    """Row offsets of a chunk at which a sample's bits differ from its own pass's (0: sharing is exact)."""
    dim = sampler.spec.model.latent_dim
    assert dim is not None
    alone = sample(sampler, 1, seed=3)
    return sum(
        not np.array_equal(generate_together(sampler, [latent(9, offset, dim), latent(3, 1, dim)])[1], alone)
        for offset in range(SAMPLE_CHUNK)
    )


def _resume(device: torch.device, directory: Path) -> dict[str, Any]:
    """A channels-last DCGAN (as a solo run on CUDA trains) stopped at step 3 and resumed from its
    checkpoint, against the same run never stopped: the largest relative difference of their losses after
    the restore, with deterministic kernels, and whether the optimizer state came back in its weights'
    layout (wgan.optim.match_parameter_layout)."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        whole: list[Any] = []
        _trainer(DCGAN, device, 6, log_every=1).fit(Hooks(on_metrics=whole.append))
        first = _trainer(DCGAN, device, 6, log_every=1)

        def keep(checkpoint: Checkpoint) -> None:
            save_checkpoint(directory, checkpoint)

        first.fit(Hooks(should_stop=lambda: first.step == 3, on_checkpoint=keep))
        resumed = _trainer(DCGAN, device, 6, log_every=1)
        resumed.restore(load_checkpoint(directory / "step-00000003.json"))
        layout = all(state["exp_avg"].stride() == param.stride() for param, state in resumed.opt_critic.state.items())
        after: list[Any] = []
        resumed.fit(Hooks(on_metrics=after.append))
    finally:
        torch.use_deterministic_algorithms(deterministic)
    pairs = [(a.critic_loss, b.critic_loss) for a, b in zip(whole[3:], after, strict=True)]
    return {
        "losses_compared": len(pairs),
        "worst_relative": max(abs(a - b) / max(abs(a), 1e-12) for a, b in pairs),
        "state_layout_matches": layout,
        # On the CPU the trainer keeps the usual layout, and the check shows less.
        "channels_last": any(
            p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
            for p in resumed.critic.parameters()
        ),
    }


def _checks_pass(offsets_differing: int, resume: dict[str, Any]) -> bool:
    return offsets_differing == 0 and resume["state_layout_matches"] and resume["worst_relative"] <= RESUME_TOLERANCE


def measure(device: torch.device, quick: bool) -> dict[str, Any]:
    steps, rounds, seconds = (20, 1, 0.5) if quick else (300, 3, 3.0)
    with tempfile.TemporaryDirectory(prefix="wgan-device-") as scratch:
        root = Path(scratch)
        sampler = _dcgan_sampler(device, root / "sampler")
        offsets, resume = _offsets(sampler), _resume(device, root / "resume")
        return {
            "device": device.type,
            "training": _training(device, steps, rounds),
            "stacked": _stacked(device, 40 if quick else 200, rounds),
            "sampling": _sampling(sampler, device, seconds),
            "offsets_differing": offsets,
            "resume": resume,
            "passed": _checks_pass(offsets, resume),
        }


def run(ctx: Context) -> Result:
    if not torch.cuda.is_available() and not ctx.quick:
        raise SystemExit("no GPU here: run scripts/device_checks.sh on a lent device machine, or --quick for a smoke")
    return measure(torch.device("cuda" if torch.cuda.is_available() else "cpu"), ctx.quick)


def render(data: Result) -> str:
    training = data["training"]
    stacked, sampling, resume = data["stacked"], data["sampling"], data["resume"]
    bf16 = "bf16" in training[0]
    checks = [
        (
            "a sample's bits at every row offset of its chunk (what sharing a pass rests on)",
            f"{data['offsets_differing']} of {SAMPLE_CHUNK} offsets differ",
            verdict(data["offsets_differing"] == 0),
        ),
        (
            "a channels-last DCGAN resumed at step 3 against the run never stopped (deterministic kernels)",
            f"losses of {resume['losses_compared']} steps within {resume['worst_relative']:.1e} relative; optimizer "
            f"state in its weights' layout: {'yes' if resume['state_layout_matches'] else 'no'}; weights "
            f"channels-last: {'yes' if resume['channels_last'] else 'no'}",
            verdict(resume["state_layout_matches"] and resume["worst_relative"] <= RESUME_TOLERANCE),
        ),
    ]
    return "\n".join(
        [
            f"On {data['device']}: the engine alone (`bench/device.py`), each comparison side by side in one process.",
            "",
            table(
                ["training case", "fp32 steps/s", *(["bf16 steps/s"] if bf16 else [])],
                [(row["case"], num(row["fp32"], 1), *([num(row["bf16"], 1)] if bf16 else [])) for row in training],
            ),
            "",
            table(
                ["stacked training", "value"],
                [
                    (
                        f"{stacked['runs']} seeds of {STACKED.title}, {stacked['steps']} steps each: one after another",
                        f"{num(stacked['one_by_one'], 1)} generator steps/s",
                    ),
                    ("the same as one stack", f"{num(stacked['stacked'], 1)} generator steps/s"),
                    ("speed-up", f"{num(stacked['stacked'] / stacked['one_by_one'], 2)}×"),
                ],
            ),
            "",
            table(
                ["sampling, DCGAN 32 px width 64", "value"],
                [
                    ("passes of 64 rows", f"{num(sampling['passes_per_second'], 1)} /s"),
                    (
                        f"{SMALL_REQUESTS} requests for {SMALL_N} samples, a pass each",
                        f"{num(sampling['small_alone'], 1)} requests/s",
                    ),
                    (
                        "the same sharing one pass (app.sample_batches)",
                        f"{num(sampling['small_shared'], 1)} requests/s "
                        f"({num(sampling['small_shared'] / sampling['small_alone'], 1)}×)",
                    ),
                ],
            ),
            "",
            table(["check", "result", ""], checks),
        ]
    )


BENCHMARK = Benchmark(
    name="device",
    title="On a GPU: training, stacked training and sampling on the CUDA path",
    summary="the engine on a lent GPU: training, stacked and sampling speed, sharing and resume checks",
    run=run,
    render=render,
    how="scripts/device_checks.sh",
)


def main(argv: list[str] | None = None) -> int:
    """On the device machine: measure and write the result JSON `python -m bench report` renders here."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for device.json")
    parser.add_argument("--revision", default=None, help="the engine revision measured (the device has no git)")
    parser.add_argument("--quick", action="store_true", help="a smoke run with few steps")
    args = parser.parse_args(argv)
    ctx = Context(
        command="scripts/device_checks.sh",
        results_dir=args.out,
        docs_dir=args.out,
        quick=args.quick,
        threads=torch.get_num_threads(),
    )
    started = time.perf_counter()
    data = run(ctx)
    env = environment()
    if args.revision:
        env["engine_revision"] = args.revision
    result: Result = {
        "name": BENCHMARK.name,
        "command": ctx.command,
        "finished": now_iso(),
        "seconds": time.perf_counter() - started,
        "quick": ctx.quick,
        "environment": env,
        "data": data,
    }
    path = save_result(args.out, BENCHMARK.name, result)
    print(render(data), file=sys.stderr)
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
