"""Fault injection for the fault tests: a worker dies inside a checkpoint write, or its training diverges.

Also 'nan-weights@STEP': the critic's weights turn NaN after that step, as a diverging run's do; and
'evaluation-error@STEP': the evaluation at that checkpoint raises, as a broken measure would.
Off unless WGAN_FAULT is set. Each fault fires once (a marker under data_dir remembers it), so the
job resumed after the crash can pass the same step.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import torch

from service.settings import Settings
from wgan.trainer import Trainer

BEFORE_MANIFEST = "kill-before-manifest"
MID_WRITE = "kill-mid-write"
NAN_WEIGHTS = "nan-weights"
EVALUATION_ERROR = "evaluation-error"


def _armed(settings: Settings, point: str, step: int) -> bool:
    if settings.fault != f"{point}@{step}":
        return False
    marker = settings.data_dir / f"fault-fired-{point}-{step}"
    if marker.exists():
        return False
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    return True


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def mid_write(settings: Settings, step: int, directory: Path) -> None:
    """Leave what a death inside write_atomic leaves: a partial temp file, nothing renamed."""
    if _armed(settings, MID_WRITE, step):
        (directory / f".step-{step:08d}.safetensors.partial.tmp").write_bytes(b"\x00" * 4096)
        _die()


def before_manifest(settings: Settings, step: int) -> Callable[[Path], None] | None:
    """Die after the tensors are written and before the manifest that would commit them."""
    if settings.fault != f"{BEFORE_MANIFEST}@{step}":
        return None

    def hook(_tensor_file: Path) -> None:
        if _armed(settings, BEFORE_MANIFEST, step):
            _die()

    return hook


def poison(settings: Settings, trainer: Trainer) -> None:
    """Called each step: at the chosen step, fill the critic's first weight with NaN."""
    if settings.fault == f"{NAN_WEIGHTS}@{trainer.step}" and _armed(settings, NAN_WEIGHTS, trainer.step):
        with torch.no_grad():
            next(trainer.critic.parameters()).fill_(float("nan"))


Evaluate = Callable[[Trainer], dict[str, float]]


def evaluation(settings: Settings, evaluate: Evaluate | None) -> Evaluate | None:
    """`evaluate`, made to raise at the chosen checkpoint (unchanged when no such fault is set)."""
    if evaluate is None or not settings.fault.startswith(f"{EVALUATION_ERROR}@"):
        return evaluate
    measure = evaluate

    def failing(trainer: Trainer) -> dict[str, float]:
        if _armed(settings, EVALUATION_ERROR, trainer.step):
            raise RuntimeError(f"injected evaluation failure at step {trainer.step}")
        return measure(trainer)

    return failing
