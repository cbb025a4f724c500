"""Measuring a generator against its data at checkpoints: the exact W1 for every data set, mode coverage on
the Gaussian mixtures, a classifier's judgement on digits and mnist (wgan.classifier)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from wgan.classifier import Judge
from wgan.data.sources import DataSource, ToySource
from wgan.data.toys import Mixture
from wgan.sampling import generate, latent

# How many generated and real examples are compared (the same real ones, from the same latents, at every
# checkpoint, so a job's curve and different jobs compare). Exact W1 costs O(n³) at worst: images, whose
# cost matrix is also 784 or more dimensions deep, get fewer.
EVAL_POINTS = 2000
EVAL_IMAGES = 1000
EVAL_SEED = 1234
# Mode coverage as VEEGAN (Srivastava et al. 2017, §5.1) and PacGAN (Lin et al. 2018, §5) count it:
# a sample is high quality within MODE_RADIUS_STD standard deviations of some centre, and a mode is
# covered when it is the nearest centre of at least one high-quality sample.
MODE_RADIUS_STD = 3.0
# A stricter figure of our own, for how evenly the mass is spread: a mode is "well covered" when at
# least this share of its expected samples are high-quality samples near it.
MODE_MIN_SHARE = 0.2
EMD_MAX_ITER = 10_000_000


def default_examples(kind: str) -> int:
    return EVAL_POINTS if kind == "points" else EVAL_IMAGES


def exact_w1(a: np.ndarray, b: np.ndarray) -> float:
    """The exact Wasserstein-1 distance between two equal-weight point clouds (POT's network simplex)."""
    # Imported here, not with the module: POT brings scikit-learn with it, about 2 s of every API, worker
    # and CLI process's start on a small host, and only a worker evaluating a checkpoint needs it.
    import ot

    cost = ot.dist(a.astype(np.float64), b.astype(np.float64), metric="euclidean")
    weights_a = np.full(len(a), 1.0 / len(a))
    weights_b = np.full(len(b), 1.0 / len(b))
    return float(ot.emd2(weights_a, weights_b, cost, numItermax=EMD_MAX_ITER))


@dataclass(frozen=True)
class Coverage:
    modes_covered: int  # the VEEGAN/PacGAN count
    modes_well_covered: int  # at least MODE_MIN_SHARE of a mode's expected share
    modes_total: int
    high_quality: float  # share of samples within MODE_RADIUS_STD σ of some centre


def mode_coverage(points: np.ndarray, mixture: Mixture) -> Coverage:
    centers = np.asarray(mixture.centers)
    distances = np.linalg.norm(points[:, None, :] - centers[None, :, :], axis=2)
    nearest = distances.argmin(axis=1)
    close = distances[np.arange(len(points)), nearest] <= MODE_RADIUS_STD * mixture.std
    counts = np.bincount(nearest[close], minlength=len(centers))
    needed = MODE_MIN_SHARE * len(points) / len(centers)
    return Coverage(
        modes_covered=int((counts > 0).sum()),
        modes_well_covered=int((counts >= needed).sum()),
        modes_total=len(centers),
        high_quality=float(close.mean()),
    )


class Evaluator:
    """Measures a generator against a fixed real sample, from fixed latents: the same at every call.

    The exact W1 is taken in data space, on the flattened values as the networks see them ([−1, 1] for
    images): the distance the critic estimates, so the critic's curve can be checked against it.
    """

    def __init__(
        self, source: DataSource, n: int | None = None, seed: int = EVAL_SEED, judge: Judge | None = None
    ) -> None:
        self.source = source
        self.n = n or default_examples(source.kind)
        self.seed = seed
        self.reference = source.reference(self.n, seed).numpy()
        # On digits and mnist: a classifier's class coverage, KL to uniform and Fréchet distance.
        self.judge = judge

    def samples(self, generator: torch.nn.Module, latent_dim: int, device: torch.device) -> np.ndarray:
        z = torch.from_numpy(latent(self.seed, self.n, latent_dim)).to(device)
        was_training = generator.training
        generator.eval()
        try:
            with torch.no_grad():
                return generate(generator, z).numpy()
        finally:
            generator.train(was_training)

    def measure(self, samples: np.ndarray) -> dict[str, float]:
        flat, reference = samples.reshape(len(samples), -1), self.reference.reshape(len(self.reference), -1)
        result = {"exact_w1": exact_w1(flat, reference)}
        mixture = self.source.mixture if isinstance(self.source, ToySource) else None
        if mixture is not None:
            coverage = mode_coverage(samples, mixture)
            result["modes_covered"] = float(coverage.modes_covered)
            result["modes_well_covered"] = float(coverage.modes_well_covered)
            result["modes_total"] = float(coverage.modes_total)
            result["high_quality"] = coverage.high_quality
        if self.judge is not None:
            result.update(self.judge.measure(samples))
        return result

    def __call__(self, trainer: object) -> dict[str, float]:
        from wgan.trainer import Trainer

        assert isinstance(trainer, Trainer)
        assert trainer.spec.model.latent_dim is not None
        return self.measure(self.samples(trainer.sampling_generator, trainer.spec.model.latent_dim, trainer.device))
