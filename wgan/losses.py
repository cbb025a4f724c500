"""Critic and generator objectives for each loss kind, and the Lipschitz penalties and clipping."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Inside the square root of the gradient norm: sqrt is not differentiable at 0.
NORM_EPS = 1e-12


def critic_loss(kind: str, d_real: Tensor, d_fake: Tensor) -> Tensor:
    """What the critic minimises. For the WGAN kinds: −(E[D(real)] − E[D(fake)])."""
    if kind == "vanilla":
        # BCE with logits, real labelled 1 and fake 0: −log σ(d) = softplus(−d), −log(1−σ(d)) = softplus(d).
        return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
    return d_fake.mean() - d_real.mean()


def generator_loss(kind: str, d_fake: Tensor) -> Tensor:
    """What the generator minimises. Vanilla uses the non-saturating form −log σ(D(G(z)))."""
    if kind == "vanilla":
        return F.softplus(-d_fake).mean()
    return -d_fake.mean()


def interpolate(real: Tensor, fake: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """x̂ = εx + (1−ε)x̃ with one ε ~ U[0, 1] per example, broadcast over all its dimensions."""
    eps_shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    eps = torch.rand(eps_shape, generator=generator, device=real.device, dtype=real.dtype)
    return torch.lerp(fake, real, eps)


def per_example_grad_norm(critic: nn.Module, points: Tensor) -> Tensor:
    """‖∇ₓD(x)‖₂ for each example, the norm taken over all of the example's dimensions."""
    points = points.detach().requires_grad_(True)
    scores = critic(points)
    (grad,) = torch.autograd.grad(scores.sum(), points, create_graph=True)
    return grad_norms(grad, batch_dims=1)


def grad_norms(grad: Tensor, batch_dims: int) -> Tensor:
    """The norm of each example's gradient, over all its dimensions (those after the first `batch_dims`)."""
    return torch.sqrt(grad.flatten(batch_dims).pow(2).sum(dim=-1) + NORM_EPS)


def penalty_of(norms: Tensor, one_sided: bool) -> Tensor:
    """(‖∇D‖ − 1)², or only its excess above 1 when one-sided, averaged over the last (example) dimension."""
    excess = norms - 1.0
    if one_sided:
        excess = excess.clamp(min=0.0)
    return excess.pow(2).mean(dim=-1)


def gradient_penalty(
    critic: nn.Module, real: Tensor, fake: Tensor, one_sided: bool, generator: torch.Generator | None = None
) -> Tensor:
    """Unweighted penalty: E[(‖∇D(x̂)‖ − 1)²] (WGAN-GP) or E[max(0, ‖∇D(x̂)‖ − 1)²] (WGAN-LP)."""
    return penalty_of(per_example_grad_norm(critic, interpolate(real, fake, generator)), one_sided)


def clip_weights_(parameters: Sequence[Tensor], clip_value: float) -> None:
    """Clamp every parameter to [−c, c] in place, in two fused multi-tensor kernels."""
    with torch.no_grad():
        torch._foreach_clamp_min_(list(parameters), -clip_value)
        torch._foreach_clamp_max_(list(parameters), clip_value)
