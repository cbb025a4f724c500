"""Wasserstein GANs in plain PyTorch: losses, networks, data, trainer, checkpoints, sampling, evaluation.

Imports nothing from the web, queue or database layers; usable from a notebook or `python -m wgan`.
"""

from wgan.assemble import Run, assemble
from wgan.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from wgan.config import SpecError, TrainSpec, resolve
from wgan.trainer import Hooks, MetricPoint, Trainer, TrainingDiverged

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "Hooks",
    "MetricPoint",
    "Run",
    "SpecError",
    "TrainSpec",
    "Trainer",
    "TrainingDiverged",
    "assemble",
    "load_checkpoint",
    "resolve",
    "save_checkpoint",
]
