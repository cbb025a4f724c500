"""How fast any stack of toy runs could train on this host: a hand-written stacked WGAN-GP loop with none of
the service or the engine around it, the ceiling that `bench stacked`'s bar is read against.

K runs of the MLP generator and critic the stacked case trains (wgan.networks' shapes: Linear + ReLU, no
norms) held as stacked tensors [K, in, out]: every layer of every run is one `baddbmm` (bias and product in
one kernel), both optimizers are one fused Adam over the stacked tensors, the penalty is the double backward
of WGAN-GP as the engine takes it. Nothing here is per run: no Python loop over runs, no stacking of
parameters at each step, no metrics or checkpoints. With K = 1 it is a solo hand loop of the same model.

Run in a fresh process per setting, the worker's OpenMP setting applied by the caller:

    python -m bench.stack_ceiling --runs 8 --threads 2 --seconds 6    (prints one JSON line)
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch
from torch import Tensor

WARMUP_STEPS = 10


def _mlp_parameters(runs: int, inputs: int, width: int, depth: int, outputs: int, rng: torch.Generator) -> list[Tensor]:
    """Weights [K, in, out] and biases [K, 1, out], initialised as nn.Linear does (uniform ±1/√fan_in)."""
    shapes = [(inputs, width)] + [(width, width)] * (depth - 1) + [(width, outputs)]
    parameters = []
    for fan_in, fan_out in shapes:
        bound = 1 / math.sqrt(fan_in)
        weight = (torch.rand(runs, fan_in, fan_out, generator=rng) * 2 - 1) * bound
        bias = (torch.rand(runs, 1, fan_out, generator=rng) * 2 - 1) * bound
        parameters += [weight.requires_grad_(), bias.requires_grad_()]
    return parameters


def _mlp(parameters: list[Tensor], x: Tensor) -> Tensor:
    """[K, batch, in] → [K, batch, out]: every run's network in one kernel per layer."""
    *hidden, last_weight, last_bias = parameters
    for weight, bias in zip(hidden[::2], hidden[1::2], strict=True):
        x = torch.relu(torch.baddbmm(bias, x, weight))
    return torch.baddbmm(last_bias, x, last_weight)


class StackedToyLoop:
    """K WGAN-GP runs on a 2-D mixture: n_critic critic updates with the penalty, then a generator update."""

    def __init__(
        self,
        runs: int,
        width: int,
        depth: int,
        batch: int,
        latent: int,
        n_critic: int,
        lr: float,
        betas: tuple[float, float],
        gp_weight: float,
        seed: int = 0,
    ) -> None:
        self.runs, self.batch, self.latent, self.n_critic, self.gp_weight = runs, batch, latent, n_critic, gp_weight
        self.rng = torch.Generator().manual_seed(seed)
        self.generator = _mlp_parameters(runs, latent, width, depth, 2, self.rng)
        self.critic = _mlp_parameters(runs, 2, width, depth, 1, self.rng)
        self.opt_generator = torch.optim.Adam(self.generator, lr=lr, betas=betas, fused=True)
        self.opt_critic = torch.optim.Adam(self.critic, lr=lr, betas=betas, fused=True)
        angles = torch.arange(8) * (2 * math.pi / 8)
        self.centers = 2 * torch.stack([angles.cos(), angles.sin()], dim=1)

    def _real(self) -> Tensor:
        which = torch.randint(len(self.centers), (self.runs, self.batch), generator=self.rng)
        return self.centers[which] + 0.02 * torch.randn(self.runs, self.batch, 2, generator=self.rng)

    def _noise(self) -> Tensor:
        return torch.randn(self.runs, self.batch, self.latent, generator=self.rng)

    def step(self) -> None:
        """One generator step of every run."""
        batch = self.batch
        for _ in range(self.n_critic):
            real = self._real()
            with torch.no_grad():
                fake = _mlp(self.generator, self._noise())
            scores = _mlp(self.critic, torch.cat([real, fake], dim=1)).squeeze(-1)  # [K, 2 batch]
            loss = scores[:, batch:].mean(1) - scores[:, :batch].mean(1)  # [K], as the penalty
            eps = torch.rand(self.runs, batch, 1, generator=self.rng)
            points = torch.lerp(fake, real, eps).requires_grad_(True)
            (grad,) = torch.autograd.grad(_mlp(self.critic, points).sum(), points, create_graph=True)
            penalty = (torch.sqrt(grad.pow(2).sum(2) + 1e-12) - 1).pow(2).mean(1)
            self.opt_critic.zero_grad(set_to_none=True)
            (loss + self.gp_weight * penalty).sum().backward()
            self.opt_critic.step()
        scores = _mlp(self.critic, _mlp(self.generator, self._noise())).squeeze(-1)
        self.opt_generator.zero_grad(set_to_none=True)
        (-scores.mean(1)).sum().backward()
        self.opt_generator.step()


def measure(runs: int, threads: int, seconds: float, **shape: int | float | tuple[float, float]) -> dict[str, float]:
    """Total generator steps/s of `runs` stacked runs on `threads` torch threads, after a warm-up."""
    torch.set_num_threads(threads)
    loop = StackedToyLoop(runs, **shape)  # type: ignore[arg-type]
    for _ in range(WARMUP_STEPS):
        loop.step()
    begin, done = time.perf_counter(), 0
    while time.perf_counter() - begin < seconds:
        loop.step()
        done += 1
    elapsed = time.perf_counter() - begin
    return {"runs": runs, "threads": threads, "steps_per_second": runs * done / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--shape", required=True, help="JSON of StackedToyLoop's arguments but runs")
    args = parser.parse_args()
    shape = json.loads(args.shape)
    shape["betas"] = tuple(shape["betas"])
    print(json.dumps(measure(args.runs, args.threads, args.seconds, **shape)))


if __name__ == "__main__":
    main()
