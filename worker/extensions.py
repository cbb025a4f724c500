"""A hook point into a worker's training, for what must run inside it without being part of it: the
fault tests' injected crashes (tests/support/faults.py), and tracing or profiling in a deployment.

The default does nothing; `WGAN_WORKER_EXTENSION=module:factory` names a factory called once with the
worker's Settings. The production path calls the same hooks either way.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from service.settings import Settings
from wgan.trainer import Trainer

Evaluate = Callable[[Trainer], dict[str, float]]


class WorkerExtension:
    """Each hook is called on the training thread; the base class leaves everything as it is."""

    def before_checkpoint(self, step: int, directory: Path) -> None:
        """Before a checkpoint's files are written into `directory`."""

    def after_tensors(self, step: int, tensor_file: Path) -> None:
        """Between a checkpoint's tensors and the manifest that commits them."""

    def should_stop(self, trainer: Trainer, should_stop: Callable[[], bool]) -> Callable[[], bool]:
        """What the trainer polls each step; given the worker's own poll."""
        return should_stop

    def evaluate(self, evaluate: Evaluate | None) -> Evaluate | None:
        """The evaluation each checkpoint runs; given the job's own."""
        return evaluate


def load_extension(settings: Settings) -> WorkerExtension:
    if not settings.worker_extension:
        return WorkerExtension()
    module_name, _, attribute = settings.worker_extension.partition(":")
    factory = getattr(importlib.import_module(module_name), attribute or "extension")
    extension = factory(settings)
    if not isinstance(extension, WorkerExtension):
        raise TypeError(f"{settings.worker_extension} made a {type(extension).__name__}, not a WorkerExtension")
    return extension
