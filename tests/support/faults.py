"""Fault injection for the fault tests, plugged into a real worker through its extension hook
(worker.extensions): the worker dies inside a checkpoint write, its training diverges, or an
evaluation raises. A stack made with `fault="POINT@STEP"` runs its workers with it (tests.support.isolated).

- 'kill-mid-write@STEP': SIGKILL while writing that step's checkpoint, leaving a partial temp file;
- 'kill-before-manifest@STEP': SIGKILL after the tensors are written, before the manifest commits them;
- 'nan-weights@STEP': the critic's weights turn NaN after that step, as a diverging run's do;
- 'evaluation-error@STEP': the evaluation at that checkpoint raises, as a broken measure would.

Each fault fires once (a marker under data_dir remembers it), so the job resumed after the crash can
pass the same step.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import torch

from service.settings import Settings
from wgan.trainer import Trainer
from worker.extensions import Evaluate, WorkerExtension

ENV = "WGAN_TEST_FAULT"
EXTENSION = "tests.support.faults:from_settings"
BEFORE_MANIFEST = "kill-before-manifest"
MID_WRITE = "kill-mid-write"
NAN_WEIGHTS = "nan-weights"
EVALUATION_ERROR = "evaluation-error"


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class Faults(WorkerExtension):
    def __init__(self, fault: str, data_dir: Path) -> None:
        self.fault = fault
        self.data_dir = data_dir

    def _armed(self, point: str, step: int) -> bool:
        if self.fault != f"{point}@{step}":
            return False
        marker = self.data_dir / f"fault-fired-{point}-{step}"
        if marker.exists():
            return False
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        return True

    def before_checkpoint(self, step: int, directory: Path) -> None:
        # What a death inside write_atomic leaves: a partial temp file, nothing renamed.
        if self._armed(MID_WRITE, step):
            (directory / f".step-{step:08d}.safetensors.partial.tmp").write_bytes(b"\x00" * 4096)
            _die()

    def after_tensors(self, step: int, tensor_file: Path) -> None:
        if self._armed(BEFORE_MANIFEST, step):
            _die()

    def should_stop(self, trainer: Trainer, should_stop: Callable[[], bool]) -> Callable[[], bool]:
        def poisoning() -> bool:
            # At the chosen step, fill the critic's first weight with NaN.
            if self._armed(NAN_WEIGHTS, trainer.step):
                with torch.no_grad():
                    next(trainer.critic.parameters()).fill_(float("nan"))
            return should_stop()

        return poisoning

    def evaluate(self, evaluate: Evaluate | None) -> Evaluate | None:
        if evaluate is None:
            return None
        measure = evaluate

        def failing(trainer: Trainer) -> dict[str, float]:
            if self._armed(EVALUATION_ERROR, trainer.step):
                raise RuntimeError(f"injected evaluation failure at step {trainer.step}")
            return measure(trainer)

        return failing


def from_settings(settings: Settings) -> WorkerExtension:
    return Faults(os.environ.get(ENV, ""), settings.data_dir)


def stack_env(fault: str) -> dict[str, str]:
    """The environment that makes a stack's workers inject `fault`."""
    return {"WGAN_WORKER_EXTENSION": EXTENSION, ENV: fault}
