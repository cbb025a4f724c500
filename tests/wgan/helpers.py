"""Shared helpers for the engine's tests: tiny specs and trainers that run in milliseconds on a CPU."""

from __future__ import annotations

from typing import Any

import torch

from wgan import Hooks, TrainSpec, assemble
from wgan.trainer import MetricPoint, Trainer


def deep_update(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        out[key] = deep_update(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


TINY_POINTS: dict[str, Any] = {
    "dataset": {"name": "8gaussians"},
    "model": {"hidden_dim": 16, "depth": 2},
    "batch_size": 32,
    "steps": 6,
    "log_every": 1,
    "checkpoint_every": 1000,
    "device": "cpu",
    "evaluate": False,
}

TINY_DIGITS: dict[str, Any] = {
    "dataset": {"name": "digits"},
    "model": {"arch": "dcgan", "hidden_dim": 4, "latent_dim": 8, "image_size": 16},
    "batch_size": 8,
    "steps": 4,
    "log_every": 1,
    "checkpoint_every": 1000,
    "device": "cpu",
    "evaluate": False,
}


def tiny_spec(base: dict[str, Any] | None = None, **changes: Any) -> TrainSpec:
    """An unresolved spec: TINY_POINTS (or `base`) with `changes` merged in (nested dicts merge)."""
    return TrainSpec.model_validate(deep_update(base or TINY_POINTS, changes))


def tiny_trainer(base: dict[str, Any] | None = None, **changes: Any) -> Trainer:
    return assemble(tiny_spec(base, **changes), device=torch.device("cpu")).trainer


def run_points(trainer: Trainer, **hooks: Any) -> list[MetricPoint]:
    points: list[MetricPoint] = []
    trainer.fit(Hooks(on_metrics=points.append, **hooks))
    return points


def comparable(point: MetricPoint) -> tuple[Any, ...]:
    """A metric point without its wall-clock timing, for bit-for-bit comparisons."""
    return (point.step, point.critic_loss, point.generator_loss, point.wasserstein_estimate, point.gradient_penalty)
