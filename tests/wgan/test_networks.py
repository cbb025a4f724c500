"""Networks: DCGAN and MLP shapes, the batch-norm switch, per-example critic norms, spectral norm."""

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from wgan.config import ModelSpec, TrainSpec, resolve
from wgan.losses import per_example_grad_norm
from wgan.networks import build_critic, build_generator, model_data_shape


def _model(data, **model) -> ModelSpec:
    kind, shape = data
    loss = model.pop("loss", "wgan-gp")
    name = "8gaussians" if kind == "points" else "digits"
    raw = {"dataset": {"name": name}, "model": model, "loss": {"kind": loss}}
    return resolve(TrainSpec.model_validate(raw), kind, shape).model


def _count(module: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in module.modules())


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [16, 28, 32, 64])
def test_dcgan_shapes(size, channels):
    model = _model(("images", (channels, 8, 8)), arch="dcgan", image_size=size, hidden_dim=4, latent_dim=8)
    shape = model_data_shape(model)
    assert shape == (channels, size, size)
    generator, critic = build_generator(model, shape), build_critic(model, shape)
    images = generator(torch.randn(3, 8))
    assert images.shape == (3, channels, size, size)
    assert images.min() >= -1
    assert images.max() <= 1
    assert critic(images).shape == (3,)
    # One block per upsampling from 4×4 (28 px: 4 → 7 → 14 → 28): the generator has depth+1 transposed convs.
    assert _count(generator, nn.ConvTranspose2d) == model.depth + 1


def test_the_16_32_and_64_px_nets_keep_their_layout_and_28_px_goes_through_7():
    # The layout checkpoints were saved with: parameter names and shapes must not move.
    model = _model(("images", (1, 8, 8)), arch="dcgan", image_size=32, hidden_dim=4, latent_dim=8)
    shapes = {k: tuple(v.shape) for k, v in build_generator(model, (1, 32, 32)).state_dict().items() if "weight" in k}
    assert shapes == {
        "net.0.weight": (8, 16, 4, 4),
        "net.1.weight": (16,),
        "net.3.weight": (16, 8, 4, 4),
        "net.4.weight": (8,),
        "net.6.weight": (8, 4, 4, 4),
        "net.7.weight": (4,),
        "net.9.weight": (4, 1, 4, 4),
    }
    mnist = _model(("images", (1, 28, 28)), arch="dcgan", hidden_dim=4, latent_dim=8)
    assert mnist.image_size == 28
    sides = []
    x = torch.randn(2, 8)[:, :, None, None]
    for layer in build_generator(mnist, (1, 28, 28)).net:
        x = layer(x)
        if isinstance(layer, nn.ConvTranspose2d):
            sides.append(x.shape[-1])
    assert sides == [4, 7, 14, 28]


def test_mlp_shapes_for_points_and_flattened_images():
    points = _model(("points", (2,)), hidden_dim=8, depth=2)
    generator, critic = build_generator(points, (2,)), build_critic(points, (2,))
    out = generator(torch.randn(5, 2))
    assert out.shape == (5, 2)
    assert out.abs().max() > 0  # no tanh on points: a mixture may reach beyond ±1
    assert critic(out).shape == (5,)
    assert _count(critic, nn.Linear) == 3

    images = _model(("images", (1, 8, 8)), arch="mlp", hidden_dim=8, depth=1)
    generator, critic = build_generator(images, (1, 8, 8)), build_critic(images, (1, 8, 8))
    out = generator(torch.randn(4, 64))
    assert out.shape == (4, 1, 8, 8)
    assert out.min() >= -1
    assert out.max() <= 1
    assert critic(out).shape == (4,)


@pytest.mark.parametrize(
    ("data", "model"),
    [
        (("points", (2,)), {"hidden_dim": 8}),
        (("images", (1, 8, 8)), {"arch": "dcgan", "hidden_dim": 4}),
    ],
    ids=["mlp", "dcgan"],
)
def test_generator_batch_norm_switch(data, model):
    on = build_generator(_model(data, generator_batch_norm=True, **model), model_data_shape(_model(data, **model)))
    off = build_generator(_model(data, generator_batch_norm=False, **model), model_data_shape(_model(data, **model)))
    batch_norms = (nn.BatchNorm1d, nn.BatchNorm2d)
    assert sum(_count(on, kind) for kind in batch_norms) > 0
    assert sum(_count(off, kind) for kind in batch_norms) == 0
    # Without batch norm, each example's output depends on its own noise only.
    off.train()
    z = torch.randn(6, _model(data, **model).latent_dim)
    torch.testing.assert_close(off(z)[:2], off(z[:2]))


@pytest.mark.parametrize(
    ("data", "model", "norm_type"),
    [
        (("points", (2,)), {"hidden_dim": 8, "critic_norm": "layer"}, nn.LayerNorm),
        (("images", (1, 8, 8)), {"arch": "dcgan", "hidden_dim": 4}, nn.GroupNorm),
    ],
    ids=["mlp-layer", "dcgan-default"],
)
def test_penalised_critics_keep_examples_independent(data, model, norm_type):
    # The gradient penalty is per example: the critic's gradient at one example must not
    # depend on the rest of the batch (batch norm would make it so).
    spec = _model(data, **model)
    shape = model_data_shape(spec)
    critic = build_critic(spec, shape).train()
    assert _count(critic, norm_type) > 0
    assert _count(critic, nn.BatchNorm1d) + _count(critic, nn.BatchNorm2d) == 0
    x = torch.randn(5, *shape)
    together = per_example_grad_norm(critic, x)
    alone = torch.cat([per_example_grad_norm(critic, x[i : i + 1]) for i in range(5)])
    torch.testing.assert_close(together, alone)


def test_batch_norm_critic_for_clipping():
    spec = _model(("images", (1, 8, 8)), arch="dcgan", hidden_dim=4, critic_norm="batch", loss="wgan-clip")
    assert _count(build_critic(spec, model_data_shape(spec)), nn.BatchNorm2d) == 1


@pytest.mark.parametrize(
    ("data", "model"),
    [(("points", (2,)), {"hidden_dim": 8}), (("images", (1, 8, 8)), {"arch": "dcgan", "hidden_dim": 4})],
    ids=["mlp", "dcgan"],
)
def test_spectral_norm_wraps_every_critic_layer_and_bounds_it(data, model):
    spec = _model(data, spectral_norm=True, **model)
    critic = build_critic(spec, model_data_shape(spec)).train()
    layers = [m for m in critic.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
    assert layers
    assert all(parametrize.is_parametrized(m, "weight") for m in layers)
    plain = build_critic(_model(data, **model), model_data_shape(spec))
    assert not any(parametrize.is_parametrized(m) for m in plain.modules())
    # After enough power iterations each weight's largest singular value is 1.
    x = torch.randn(4, *model_data_shape(spec))
    for _ in range(50):
        critic(x)
    for layer in layers:
        weight = layer.weight.detach().flatten(1)
        assert torch.linalg.matrix_norm(weight, ord=2).item() == pytest.approx(1.0, abs=0.05)
