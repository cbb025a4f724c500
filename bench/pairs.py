"""The trainer and the hand-written loop side by side: the cases, how each side is built and timed."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.handloop import HandLoop, RealBatch, tensor_batches, toy_batches
from wgan import Checkpoint, Hooks, MetricPoint, Run, Trainer, TrainSpec, assemble, save_checkpoint
from wgan.data.sources import TensorSource
from wgan.data.toys import MIXTURES
from wgan.networks import build_critic, build_generator, model_data_shape

# What a worker does around the loop: metrics every 10 steps, a checkpoint every 500, no evaluation.
SERVICE_SETTINGS: dict[str, Any] = {"checkpoint_every": 500, "log_every": 10, "evaluate": False, "device": "cpu"}
KEEP_CHECKPOINTS = 2


@dataclass(frozen=True)
class Case:
    name: str
    title: str
    spec: dict[str, Any]
    has_bar: bool  # the issue's ≥ 1.0× bar applies (the rest are extra, informative cases)


def _toy(width: int, loss: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "dataset": {"name": "8gaussians"},
        "model": {"hidden_dim": width, "depth": 3},
        "batch_size": 256,
        "loss": loss,
        **extra,
    }


def _dcgan32(loss: dict[str, Any]) -> dict[str, Any]:
    return {
        "dataset": {"name": "digits"},
        "model": {"arch": "dcgan", "image_size": 32, "hidden_dim": 64},
        "batch_size": 64,
        "loss": loss,
    }


# wgan-clip runs with the constant schedule here: the paper's 100-iteration boosts would make a
# "generator step" mean different amounts of work in different windows.
GP = {"kind": "wgan-gp"}
CLIP = {"kind": "wgan-clip", "critic_schedule": "constant"}
CASES: tuple[Case, ...] = (
    Case("toy512-gp", "8gaussians MLP 512×3, batch 256, wgan-gp", _toy(512, GP), True),
    Case("toy512-clip", "8gaussians MLP 512×3, batch 256, wgan-clip", _toy(512, CLIP), True),
    Case("dcgan32-gp", "digits DCGAN 32×32 width 64, batch 64, wgan-gp", _dcgan32(GP), True),
    Case("dcgan32-clip", "digits DCGAN 32×32 width 64, batch 64, wgan-clip", _dcgan32(CLIP), True),
    Case(
        "toy128-gp",
        "8gaussians MLP 128×3, batch 256, wgan-gp λ 0.1 (the quality run; overhead shows more)",
        _toy(128, {"kind": "wgan-gp", "gp_weight": 0.1}, optimizer={"lr": 1e-4, "betas": [0.5, 0.9]}),
        False,
    ),
)
CASES_BY_NAME = {case.name: case for case in CASES}


def make_run(case: Case, **overrides: Any) -> Run:
    """The trainer for `case` as the worker builds it (assemble), with the service settings."""
    spec = TrainSpec.model_validate({**case.spec, **SERVICE_SETTINGS, "steps": 1, **overrides})
    return assemble(spec)


def _seeded_nets(spec: TrainSpec) -> tuple[nn.Module, nn.Module]:
    """The same networks the trainer starts from: same builders, same seed, same order."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        shape = model_data_shape(spec.model)
        return build_generator(spec.model, shape), build_critic(spec.model, shape)


def make_hand_loop(run: Run) -> HandLoop:
    spec = run.spec
    data = run.trainer.data
    real_batch: RealBatch
    if isinstance(data, TensorSource):
        real_batch = tensor_batches(data.data)
    else:
        assert spec.dataset.name is not None
        mixture = MIXTURES[spec.dataset.name]
        real_batch = toy_batches(torch.tensor(mixture.centers), mixture.std)
    generator, critic = _seeded_nets(spec)
    assert spec.n_critic is not None
    assert spec.model.latent_dim is not None
    assert spec.optimizer.lr is not None
    assert spec.loss.gp_weight is not None
    assert spec.loss.clip_value is not None
    return HandLoop(
        G=generator,
        D=critic,
        real_batch=real_batch,
        kind=spec.loss.kind,
        batch=run.trainer.batch_size,
        latent=spec.model.latent_dim,
        n_critic=spec.n_critic,
        lr=spec.optimizer.lr,
        betas=spec.optimizer.betas or (0.9, 0.999),
        lam=spec.loss.gp_weight,
        clip=spec.loss.clip_value,
        seed=spec.seed,
    )


class TrainerSide:
    """Runs a trainer for n more steps per call, through Trainer.fit with the worker's hooks:
    each metric point is serialised as JSON (what the worker streams) and a checkpoint is written
    (safetensors, fsync'd) every `checkpoint_every` steps. Returns generator steps per second."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self.directory = Path(tempfile.mkdtemp(prefix="wgan-bench-"))
        self.streamed: list[str] = []
        self.saved = 0
        self.hooks = Hooks(on_metrics=self._on_metrics, on_checkpoint=self._on_checkpoint)

    def _on_metrics(self, point: MetricPoint) -> None:
        self.streamed.append(json.dumps(asdict(point)))
        del self.streamed[:-100]

    def _on_checkpoint(self, checkpoint: Checkpoint) -> None:
        # Each call of fit ends with a checkpoint; only those at the job's real interval are written,
        # since splitting one job into timed windows is the benchmark's doing, not the job's.
        if checkpoint.step % self.trainer.spec.checkpoint_every == 0:
            save_checkpoint(self.directory, checkpoint)
            self.saved += 1
            for old in sorted(self.directory.glob("step-*"))[: -2 * KEEP_CHECKPOINTS]:
                old.unlink()

    def __call__(self, steps: int) -> float:
        trainer = self.trainer
        trainer.spec = trainer.spec.model_copy(update={"steps": trainer.step + steps})
        start = time.perf_counter()
        trainer.fit(self.hooks)
        return steps / (time.perf_counter() - start)

    def checkpoint_seconds(self, repeats: int = 3) -> float:
        """What writing one checkpoint of this run costs (median of `repeats`)."""
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            save_checkpoint(self.directory, self.trainer.checkpoint())
            times.append(time.perf_counter() - start)
        return sorted(times)[len(times) // 2]

    def close(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


class HandSide:
    def __init__(self, loop: HandLoop) -> None:
        self.loop = loop

    def __call__(self, steps: int) -> float:
        start = time.perf_counter()
        self.loop.train(steps)
        return steps / (time.perf_counter() - start)


def calibrate(side: Callable[[int], float], target_seconds: float, warmup_steps: int = 2) -> int:
    """Steps per trial so that one trial takes about `target_seconds` (and a warm-up on the way)."""
    side(warmup_steps)
    rate = side(warmup_steps)
    return max(2, min(2000, round(rate * target_seconds)))


def max_param_difference(a: nn.Module, b: nn.Module) -> float:
    state_b = b.state_dict()
    worst = 0.0
    for key, value in a.state_dict().items():
        if value.is_floating_point():
            worst = max(worst, float((value - state_b[key]).abs().max()))
    return worst


def equivalence(case: Case, steps: int = 2) -> dict[str, float]:
    """Train the trainer and the hand loop `steps` steps from the same start; how far apart they end."""
    run = make_run(case)
    hand = make_hand_loop(run)
    run.trainer.spec = run.trainer.spec.model_copy(update={"steps": steps})
    run.trainer.fit()
    hand.train(steps)
    return {
        "steps": steps,
        "generator_max_abs_diff": max_param_difference(run.trainer.generator, hand.G),
        "critic_max_abs_diff": max_param_difference(run.trainer.critic, hand.D),
    }
