"""The minimal hand-written WGAN loop the trainer is timed against, in the style of gan_toy.py.

It trains exactly the model, loss and batch the trainer does (the nets come from the same builders
and the same seed, and it draws its random numbers in the trainer's order, so the two runs can be
checked against each other), with nothing around it: no metrics, no checkpoints, no hooks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

RealBatch = Callable[[int, torch.Generator], Tensor]


def toy_batches(centers: Tensor, std: float) -> RealBatch:
    """A Gaussian mixture, sampled fresh each batch (as gan_toy.py does)."""
    return lambda n, rng: (
        centers[torch.randint(len(centers), (n,), generator=rng)] + std * torch.randn(n, 2, generator=rng)
    )


def tensor_batches(data: Tensor) -> RealBatch:
    """Examples drawn with replacement from a tensor held in memory."""
    return lambda n, rng: data[torch.randint(len(data), (n,), generator=rng)]


@dataclass
class HandLoop:
    G: nn.Module
    D: nn.Module
    real_batch: RealBatch
    kind: str  # "wgan-gp" or "wgan-clip"
    batch: int
    latent: int
    n_critic: int
    lr: float
    betas: tuple[float, float]
    lam: float = 10.0
    clip: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind == "wgan-clip":
            self.optG: torch.optim.Optimizer = torch.optim.RMSprop(self.G.parameters(), lr=self.lr)
            self.optD: torch.optim.Optimizer = torch.optim.RMSprop(self.D.parameters(), lr=self.lr)
        else:
            self.optG = torch.optim.Adam(self.G.parameters(), lr=self.lr, betas=self.betas)
            self.optD = torch.optim.Adam(self.D.parameters(), lr=self.lr, betas=self.betas)
        self.rng = torch.Generator().manual_seed(self.seed)
        if self.kind == "wgan-clip":  # start inside the clipping box, as the WGAN code does
            for p in self.D.parameters():
                p.data.clamp_(-self.clip, self.clip)

    def train(self, iters: int) -> None:
        G, D, optG, optD, rng, B = self.G, self.D, self.optG, self.optD, self.rng, self.batch
        for _ in range(iters):
            for p in D.parameters():  # reset requires_grad: they are set to False below in the G update
                p.requires_grad_(True)
            for _ in range(self.n_critic):
                real = self.real_batch(B, rng)
                with torch.no_grad():  # totally freeze G
                    fake = G(torch.randn(B, self.latent, generator=rng))
                D.zero_grad()
                d_real, d_fake = D(real), D(fake)
                d_cost = d_fake.mean() - d_real.mean()
                if self.kind == "wgan-gp":
                    eps = torch.rand(B, *([1] * (real.dim() - 1)), generator=rng)
                    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
                    (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
                    norm = torch.sqrt(grad.flatten(1).pow(2).sum(1) + 1e-12)
                    d_cost = d_cost + self.lam * (norm - 1).pow(2).mean()
                d_cost.backward()
                optD.step()
                if self.kind == "wgan-clip":
                    for p in D.parameters():
                        p.data.clamp_(-self.clip, self.clip)
            for p in D.parameters():
                p.requires_grad_(False)  # to avoid computation
            G.zero_grad()
            g_cost = -D(G(torch.randn(B, self.latent, generator=rng))).mean()
            g_cost.backward()
            optG.step()
