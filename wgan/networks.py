"""Generator and critic networks: MLPs for points and flattened images, DCGAN-style convnets."""

from __future__ import annotations

import itertools
import math

from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from wgan.config import ModelSpec, dcgan_sides

LEAKY_SLOPE = 0.2


def _critic_norm(kind: str | None, features: int, conv: bool) -> nn.Module:
    if kind == "layer":
        # GroupNorm with one group normalises each example over all its features: layer norm
        # that, unlike batch norm, keeps examples independent (the gradient penalty needs that).
        return nn.GroupNorm(1, features) if conv else nn.LayerNorm(features)
    if kind == "batch":
        return nn.BatchNorm2d(features) if conv else nn.BatchNorm1d(features)
    return nn.Identity()


def _maybe_sn(layer: nn.Module, on: bool) -> nn.Module:
    return spectral_norm(layer) if on else layer


class MLPGenerator(nn.Module):
    def __init__(
        self, latent_dim: int, out_shape: tuple[int, ...], width: int, depth: int, batch_norm: bool, tanh: bool
    ) -> None:
        super().__init__()
        self.out_shape = out_shape
        layers: list[nn.Module] = []
        features = latent_dim
        for _ in range(depth):
            layers += [nn.Linear(features, width)]
            if batch_norm:
                layers += [nn.BatchNorm1d(width)]
            layers += [nn.ReLU(inplace=True)]
            features = width
        layers += [nn.Linear(features, math.prod(out_shape))]
        if tanh:
            layers += [nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(z.shape[0], *self.out_shape)


class MLPCritic(nn.Module):
    def __init__(self, in_shape: tuple[int, ...], width: int, depth: int, norm: str | None, spectral: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        features = math.prod(in_shape)
        for _ in range(depth):
            layers += [_maybe_sn(nn.Linear(features, width), spectral), _critic_norm(norm, width, conv=False)]
            layers += [nn.ReLU(inplace=True)]
            features = width
        layers += [_maybe_sn(nn.Linear(features, 1), spectral)]
        self.net = nn.Sequential(*[layer for layer in layers if not isinstance(layer, nn.Identity)])

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1)).squeeze(1)


def _resampling(small: int, large: int) -> tuple[int, int, int]:
    """(kernel, stride, padding) of the 4×4 (transposed) convolution between sides `small` and `large`."""
    if large == 2 * small:
        return 4, 2, 1  # doubles or halves the side
    assert large == small + 3, (small, large)
    return 4, 1, 0  # 4 → 7 and back, for 28 px images


class DCGANGenerator(nn.Module):
    """z → 4×4 → … → image_size, halving the channels at each upsampling (Radford et al. 2016)."""

    def __init__(self, latent_dim: int, channels: int, width: int, image_size: int, batch_norm: bool) -> None:
        super().__init__()
        sides = dcgan_sides(image_size)
        features = width * 2 ** (len(sides) - 2)
        layers: list[nn.Module] = [nn.ConvTranspose2d(latent_dim, features, 4, 1, 0, bias=not batch_norm)]
        for i, (small, large) in enumerate(itertools.pairwise(sides)):
            last = i == len(sides) - 2
            if batch_norm:
                layers += [nn.BatchNorm2d(features)]
            out = channels if last else features // 2
            layers += [
                nn.ReLU(inplace=True),
                nn.ConvTranspose2d(features, out, *_resampling(small, large), bias=last or not batch_norm),
            ]
            features = out
        layers += [nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z[:, :, None, None])


class DCGANCritic(nn.Module):
    """image_size → … → 4×4 → a score, doubling the channels at each downsampling."""

    def __init__(self, channels: int, width: int, image_size: int, norm: str | None, spectral: bool) -> None:
        super().__init__()
        sides = dcgan_sides(image_size)[::-1]
        layers: list[nn.Module] = [
            _maybe_sn(nn.Conv2d(channels, width, *_resampling(sides[1], sides[0])), spectral),
            nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
        ]
        features = width
        for large, small in itertools.pairwise(sides[1:]):
            layers += [
                _maybe_sn(nn.Conv2d(features, features * 2, *_resampling(small, large)), spectral),
                _critic_norm(norm, features * 2, conv=True),
                nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
            ]
            features *= 2
        layers += [_maybe_sn(nn.Conv2d(features, 1, 4, 1, 0), spectral)]
        self.net = nn.Sequential(*[layer for layer in layers if not isinstance(layer, nn.Identity)])

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).flatten()


def build_generator(model: ModelSpec, data_shape: tuple[int, ...]) -> nn.Module:
    """The generator a resolved ModelSpec describes, for examples of `data_shape`."""
    assert model.latent_dim, "resolve the spec first"
    assert model.hidden_dim, "resolve the spec first"
    assert model.depth, "resolve the spec first"
    batch_norm = bool(model.generator_batch_norm)
    if model.arch == "dcgan":
        return DCGANGenerator(model.latent_dim, data_shape[0], model.hidden_dim, data_shape[-1], batch_norm)
    images = len(data_shape) == 3
    return MLPGenerator(model.latent_dim, data_shape, model.hidden_dim, model.depth, batch_norm, tanh=images)


def build_critic(model: ModelSpec, data_shape: tuple[int, ...]) -> nn.Module:
    assert model.hidden_dim, "resolve the spec first"
    assert model.depth, "resolve the spec first"
    if model.arch == "dcgan":
        return DCGANCritic(data_shape[0], model.hidden_dim, data_shape[-1], model.critic_norm, model.spectral_norm)
    return MLPCritic(data_shape, model.hidden_dim, model.depth, model.critic_norm, model.spectral_norm)


POINT_DIM = 2


def model_data_shape(model: ModelSpec) -> tuple[int, ...]:
    """One example's shape as the networks see it."""
    if model.image_size is None:
        return (POINT_DIM,)
    assert model.channels is not None
    return (model.channels, model.image_size, model.image_size)
