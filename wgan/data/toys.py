"""The 2-D toy distributions of the WGAN-GP paper, sampled fresh on the target device."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Mixture:
    """An isotropic Gaussian mixture with equal weights, already in the scaled coordinates."""

    centers: tuple[tuple[float, float], ...]
    std: float

    def sample(self, n: int, generator: torch.Generator, device: torch.device, centers: Tensor | None = None) -> Tensor:
        """`centers` may be passed already on `device`, sparing a host-to-device copy per batch."""
        if centers is None:
            centers = torch.tensor(self.centers, device=device)
        which = torch.randint(len(self.centers), (n,), generator=generator, device=device)
        noise = torch.randn(n, 2, generator=generator, device=device)
        return centers[which] + self.std * noise


def _eight_gaussians() -> Mixture:
    # gan_toy.py: unit circle at 45° steps, scaled by 2, noise 0.02, then divided by 1.414.
    scale, divisor = 2.0, 1.414
    angles = [k * math.pi / 4 for k in range(8)]
    centers = tuple((scale * math.cos(a) / divisor, scale * math.sin(a) / divisor) for a in angles)
    return Mixture(centers=centers, std=0.02 / divisor)


def _twenty_five_gaussians() -> Mixture:
    # gan_toy.py: a 5×5 grid at spacing 2, noise 0.05, then divided by 2.828.
    divisor = 2.828
    centers = tuple((2.0 * x / divisor, 2.0 * y / divisor) for x in range(-2, 3) for y in range(-2, 3))
    return Mixture(centers=centers, std=0.05 / divisor)


MIXTURES: dict[str, Mixture] = {"8gaussians": _eight_gaussians(), "25gaussians": _twenty_five_gaussians()}


def swiss_roll(n: int, generator: torch.Generator, device: torch.device) -> Tensor:
    """scikit-learn's make_swiss_roll(noise=0.25), its (x, z) plane, divided by 7.5 (gan_toy.py)."""
    t = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=generator, device=device))
    points = torch.stack((t * torch.cos(t), t * torch.sin(t)), dim=1)
    points = points + 0.25 * torch.randn(n, 2, generator=generator, device=device)
    return points / 7.5


def sample_toy(name: str, n: int, generator: torch.Generator, device: torch.device) -> Tensor:
    if name == "swissroll":
        return swiss_roll(n, generator, device)
    return MIXTURES[name].sample(n, generator, device)


TOY_NAMES = ("8gaussians", "25gaussians", "swissroll")
