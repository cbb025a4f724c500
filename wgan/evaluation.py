"""Measuring a generator against its data: exact W1 and mode coverage for the 2-D toys."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import ot
import torch

from wgan.data.sources import DataSource, ToySource
from wgan.data.toys import Mixture
from wgan.sampling import generate, latent

EVAL_POINTS = 2000
EVAL_SEED = 1234
# A mode counts as covered when at least this share of its expected samples land within
# MODE_RADIUS_STD standard deviations of its centre (the criterion of VEEGAN and PacGAN).
MODE_RADIUS_STD = 3.0
MODE_MIN_SHARE = 0.2
EMD_MAX_ITER = 10_000_000


def exact_w1(a: np.ndarray, b: np.ndarray) -> float:
    """The exact Wasserstein-1 distance between two equal-weight point clouds (POT's network simplex)."""
    cost = ot.dist(a.astype(np.float64), b.astype(np.float64), metric="euclidean")
    weights_a = np.full(len(a), 1.0 / len(a))
    weights_b = np.full(len(b), 1.0 / len(b))
    return float(ot.emd2(weights_a, weights_b, cost, numItermax=EMD_MAX_ITER))


@dataclass(frozen=True)
class Coverage:
    modes_covered: int
    modes_total: int
    high_quality: float  # share of samples within MODE_RADIUS_STD σ of some centre


def mode_coverage(points: np.ndarray, mixture: Mixture) -> Coverage:
    centers = np.asarray(mixture.centers)
    distances = np.linalg.norm(points[:, None, :] - centers[None, :, :], axis=2)
    nearest = distances.argmin(axis=1)
    close = distances[np.arange(len(points)), nearest] <= MODE_RADIUS_STD * mixture.std
    counts = np.bincount(nearest[close], minlength=len(centers))
    needed = MODE_MIN_SHARE * len(points) / len(centers)
    return Coverage(int((counts >= needed).sum()), len(centers), float(close.mean()))


class ToyEvaluator:
    """Measures a 2-D generator against fresh real samples, both the same at every call."""

    def __init__(self, source: DataSource, n: int = EVAL_POINTS, seed: int = EVAL_SEED) -> None:
        self.source = source
        self.n = n
        self.seed = seed
        self.reference = source.reference(n, seed).numpy()

    def points(self, generator: torch.nn.Module, latent_dim: int, device: torch.device) -> np.ndarray:
        z = torch.from_numpy(latent(self.seed, self.n, latent_dim)).to(device)
        was_training = generator.training
        generator.eval()
        try:
            with torch.no_grad():
                return generate(generator, z).numpy()
        finally:
            generator.train(was_training)

    def measure(self, points: np.ndarray) -> dict[str, float]:
        result = {"exact_w1": exact_w1(points, self.reference)}
        mixture = self.source.mixture if isinstance(self.source, ToySource) else None
        if mixture is not None:
            coverage = mode_coverage(points, mixture)
            result["modes_covered"] = float(coverage.modes_covered)
            result["high_quality"] = coverage.high_quality
        return result

    def __call__(self, trainer: object) -> dict[str, float]:
        from wgan.trainer import Trainer

        assert isinstance(trainer, Trainer)
        assert trainer.spec.model.latent_dim is not None
        return self.measure(self.points(trainer.sampling_generator, trainer.spec.model.latent_dim, trainer.device))
