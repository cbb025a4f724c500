"""Losses, the gradient penalty (and its classic mistakes), one-sided penalty, clipping, directions of steps."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.wgan.helpers import tiny_trainer
from wgan.losses import (
    NORM_EPS,
    clip_weights_,
    critic_loss,
    generator_loss,
    gradient_penalty,
    interpolate,
    per_example_grad_norm,
)

KINDS = ["wgan-clip", "wgan-gp", "wgan-lp", "vanilla"]


class Linear(nn.Module):
    """D(x) = <w, x> + b over all of an example's dimensions: ‖∇D‖ = ‖w‖ everywhere."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.clone())
        self.bias = nn.Parameter(torch.tensor(0.3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.weight).flatten(1).sum(1) + self.bias


class HalfSquare(nn.Module):
    """D(x) = ½‖x‖²: ∇D(x) = x, so the per-example gradient norm is ‖x‖ over all of C×H×W."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x.pow(2).flatten(1).sum(1)


def _unit(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    w = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    return w / w.norm()


# --- the objectives ------------------------------------------------------------------------


def test_wgan_losses_are_the_negated_critic_gap():
    d_real, d_fake = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.0, 0.5])
    gap = d_real.mean() - d_fake.mean()
    for kind in ("wgan-clip", "wgan-gp", "wgan-lp"):
        assert critic_loss(kind, d_real, d_fake).item() == pytest.approx(-gap.item())
        assert generator_loss(kind, d_fake).item() == pytest.approx(-d_fake.mean().item())


def test_vanilla_losses_are_bce_with_logits_non_saturating():
    d_real, d_fake = torch.tensor([1.0, -3.0]), torch.tensor([-1.0, 0.0, 2.5])
    expected = F.binary_cross_entropy_with_logits(d_real, torch.ones(2)) + F.binary_cross_entropy_with_logits(
        d_fake, torch.zeros(3)
    )
    assert critic_loss("vanilla", d_real, d_fake).item() == pytest.approx(expected.item())
    # Non-saturating: −log σ(D(G(z))), not log(1 − σ(D(G(z)))).
    assert generator_loss("vanilla", d_fake).item() == pytest.approx(
        F.binary_cross_entropy_with_logits(d_fake, torch.ones(3)).item()
    )
    # Far-off logits stay finite (softplus, not log(sigmoid)).
    assert math.isfinite(critic_loss("vanilla", torch.tensor([-200.0]), torch.tensor([200.0])).item())


# --- interpolates ---------------------------------------------------------------------------


def test_interpolate_draws_one_epsilon_per_example_broadcast_over_all_its_dimensions():
    n = 64
    real, fake = torch.ones(n, 3, 4, 4), torch.zeros(n, 3, 4, 4)
    mixed = interpolate(real, fake, torch.Generator().manual_seed(0))
    # With real = 1 and fake = 0, x̂ = ε: each example is one constant...
    per_example = mixed.flatten(1)
    assert torch.equal(per_example, per_example[:, :1].expand_as(per_example))
    eps = per_example[:, 0]
    # ...and the examples have different ε (one ε for the whole batch would make them equal).
    assert eps.unique().numel() == n
    assert (eps >= 0).all()
    assert (eps <= 1).all()
    assert 0.3 < eps.mean().item() < 0.7


def test_interpolate_lies_on_the_segment_between_real_and_fake():
    gen = torch.Generator().manual_seed(1)
    real, fake = torch.randn(32, 2, generator=gen), torch.randn(32, 2, generator=gen)
    mixed = interpolate(real, fake, torch.Generator().manual_seed(2))
    eps = torch.rand((32, 1), generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(mixed, eps * real + (1 - eps) * fake)


# --- the gradient penalty -------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2,), (3, 8, 8)], ids=["points", "images"])
def test_penalty_is_zero_for_a_linear_critic_with_unit_norm_weight(shape):
    # On images the unit norm is over all of C×H×W: a norm over one axis would not be 1.
    critic = Linear(_unit(shape))
    gen = torch.Generator().manual_seed(0)
    real, fake = torch.randn(16, *shape, generator=gen), torch.randn(16, *shape, generator=gen)
    for one_sided in (False, True):
        assert gradient_penalty(critic, real, fake, one_sided).item() == pytest.approx(0.0, abs=1e-10)


@pytest.mark.parametrize("norm", [0.5, 2.0, 3.0])
@pytest.mark.parametrize("shape", [(2,), (3, 8, 8)], ids=["points", "images"])
def test_penalty_of_a_linear_critic_is_the_squared_excess_of_its_weight_norm(shape, norm):
    critic = Linear(norm * _unit(shape, seed=3))
    real, fake = torch.randn(8, *shape), torch.randn(8, *shape)
    assert gradient_penalty(critic, real, fake, one_sided=False).item() == pytest.approx((norm - 1) ** 2, rel=1e-5)
    # WGAN-LP penalises only norms above 1, and there exactly as WGAN-GP does.
    expected_lp = max(norm - 1, 0.0) ** 2
    assert gradient_penalty(critic, real, fake, one_sided=True).item() == pytest.approx(expected_lp, rel=1e-5, abs=0)


def _norms_batch():
    """Image-shaped examples whose norms over all of C×H×W are known and differ: some < 1, some > 1."""
    base = _unit((3, 4, 5), seed=7)
    norms = torch.tensor([0.2, 0.7, 1.0, 1.5, 3.0])
    return base * norms[:, None, None, None], norms


def test_gradient_norm_is_per_example_over_all_of_c_h_w():
    x, norms = _norms_batch()
    got = per_example_grad_norm(HalfSquare(), x)
    # One value per example (a norm over one axis would leave H×W values, one over the batch a scalar).
    assert got.shape == (5,)
    torch.testing.assert_close(got, norms, rtol=1e-5, atol=1e-5)


def test_penalties_match_per_example_analytic_values_on_images():
    x, norms = _norms_batch()
    # real == fake makes x̂ = x whatever ε is, so the expected penalty is known exactly.
    gp = gradient_penalty(HalfSquare(), x, x, one_sided=False)
    lp = gradient_penalty(HalfSquare(), x, x, one_sided=True)
    assert gp.item() == pytest.approx(((norms - 1) ** 2).mean().item(), rel=1e-5)
    assert lp.item() == pytest.approx((((norms - 1).clamp(min=0)) ** 2).mean().item(), rel=1e-5)
    # The mistakes give other numbers: a norm over the whole batch, or over one axis only.
    whole_batch = (x.norm() - 1) ** 2
    one_axis = ((x.norm(dim=1) - 1) ** 2).mean()
    assert abs(gp.item() - whole_batch.item()) > 0.1
    assert abs(gp.item() - one_axis.item()) > 0.1


def test_lp_is_zero_below_one_and_equals_gp_above_one():
    x, norms = _norms_batch()
    below, above = x[norms < 1], x[norms > 1]
    assert gradient_penalty(HalfSquare(), below, below, one_sided=True).item() == 0.0
    assert gradient_penalty(HalfSquare(), below, below, one_sided=False).item() > 0.05
    torch.testing.assert_close(
        gradient_penalty(HalfSquare(), above, above, one_sided=True),
        gradient_penalty(HalfSquare(), above, above, one_sided=False),
    )


def test_penalty_is_differentiable_in_the_critic_and_finite_at_a_zero_gradient():
    # A flat critic has ∇D = 0, where ‖·‖ is not differentiable; the epsilon inside the sqrt keeps it finite.
    critic = Linear(torch.zeros(2))
    penalty = gradient_penalty(critic, torch.randn(8, 2), torch.randn(8, 2), one_sided=False)
    assert penalty.item() == pytest.approx((math.sqrt(NORM_EPS) - 1) ** 2)
    penalty.backward()
    assert critic.weight.grad is not None
    assert torch.isfinite(critic.weight.grad).all()
    # Also through a real network: the penalty's gradient reaches every weight of the critic.
    net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    gradient_penalty(net, torch.randn(8, 2), torch.randn(8, 2), one_sided=False).backward()
    # (All but the output bias, which does not change ∇ₓD.)
    weights = [p for name, p in net.named_parameters() if name != "2.bias"]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in weights)


def test_a_penalised_critic_step_pulls_gradient_norms_towards_one():
    # With a huge λ the penalty dominates the step: the mean distance of the norms from 1 must shrink.
    trainer = tiny_trainer(loss={"kind": "wgan-gp", "gp_weight": 1000.0}, optimizer={"lr": 1e-3})
    probe = trainer.data.sample(256, torch.Generator().manual_seed(5))

    def distance_from_one() -> float:
        return (per_example_grad_norm(trainer.critic, probe) - 1).abs().mean().item()

    before = distance_from_one()
    for _ in range(10):
        trainer._critic_step()
    assert distance_from_one() < before


# --- clipping -------------------------------------------------------------------------------


def test_clip_weights_clamps_every_tensor_in_place():
    params = [torch.tensor([-1.0, 0.005, 2.0]), torch.tensor([[0.5, -0.003]])]
    clip_weights_(params, 0.01)
    assert params[0].tolist() == pytest.approx([-0.01, 0.005, 0.01])
    assert params[1][0].tolist() == pytest.approx([0.01, -0.003])


@pytest.mark.parametrize("spectral", [False, True])
def test_clipping_keeps_every_critic_weight_within_c_after_critic_steps(spectral):
    c = 0.05
    # A large learning rate (RMSprop steps are about lr in size) pushes weights past the bounds,
    # so clipping has work to do.
    trainer = tiny_trainer(
        loss={"kind": "wgan-clip", "clip_value": c, "critic_schedule": "constant"},
        model={"spectral_norm": spectral},
        optimizer={"lr": 0.02},
    )
    # The critic starts inside the box, as in the WGAN code.
    assert all((p.abs() <= c).all() for p in trainer.critic.parameters())
    for _ in range(5):
        before = [p.detach().clone() for p in trainer.critic.parameters()]
        trainer._critic_step()
        # Compared in float32, the parameters' own precision.
        assert all(torch.isfinite(p).all() and (p.abs() <= c).all() for p in trainer.critic.parameters())
        assert any(not torch.equal(a, b) for a, b in zip(before, trainer.critic.parameters(), strict=True))
    # It did clamp (weights sit on the bound), and it did not clamp the generator.
    assert any((p.abs() == c).any() for p in trainer.critic.parameters())
    assert any((p.abs() > c).any() for p in trainer.generator.parameters())


# --- each kind moves its networks the right way ---------------------------------------------


class FixedBatches:
    """A data source that always returns the same real batch."""

    kind = "points"

    def __init__(self, real: torch.Tensor) -> None:
        self.real = real
        self.device = real.device

    def sample(self, batch_size, generator):
        return self.real[:batch_size]

    def reference(self, n, seed):
        return self.real[:n]


def _gap(trainer, real, z) -> float:
    with torch.no_grad():
        return (trainer.critic(real).mean() - trainer.critic(trainer.generator(z)).mean()).item()


@pytest.mark.parametrize("kind", KINDS)
def test_a_critic_step_widens_the_gap_between_real_and_fake(kind):
    # The penalty is kept small here so that the step's direction is the critic objective's.
    trainer = tiny_trainer(
        loss={"kind": kind, "gp_weight": 0.01, "clip_value": 0.05, "critic_schedule": "constant"},
        optimizer={"lr": 1e-3 if kind != "wgan-clip" else 5e-4},
    )
    gen = torch.Generator().manual_seed(9)
    real, z = trainer.data.sample(32, gen), torch.randn(32, 2, generator=gen)
    trainer.data = FixedBatches(real)
    trainer.noise = lambda n: z[:n]
    if kind == "wgan-clip":
        trainer._critic_step()  # the first step also moves the critic into the clipping box
    generator_before = [p.detach().clone() for p in trainer.generator.parameters()]
    gaps = [_gap(trainer, real, z)]
    for _ in range(3):
        trainer._critic_step()
        gaps.append(_gap(trainer, real, z))
    assert all(after > before for before, after in itertools.pairwise(gaps)), gaps
    # Fakes are detached in the critic step: the generator neither changes nor collects gradients.
    assert all(torch.equal(a, b) for a, b in zip(generator_before, trainer.generator.parameters(), strict=True))
    assert all(p.grad is None for p in trainer.generator.parameters())


@pytest.mark.parametrize("kind", KINDS)
def test_a_generator_step_raises_the_fixed_critics_score_of_fakes(kind):
    trainer = tiny_trainer(loss={"kind": kind}, optimizer={"lr": 1e-3})
    z = torch.randn(32, 2, generator=torch.Generator().manual_seed(4))
    trainer.noise = lambda n: z[:n]
    critic_before = [p.detach().clone() for p in trainer.critic.parameters()]

    def score() -> float:
        with torch.no_grad():
            return trainer.critic(trainer.generator(z)).mean().item()

    scores = [score()]
    for _ in range(3):
        trainer._generator_step()
        scores.append(score())
    assert all(after > before for before, after in itertools.pairwise(scores)), scores
    # The generator step leaves the critic alone.
    assert all(torch.equal(a, b) for a, b in zip(critic_before, trainer.critic.parameters(), strict=True))
