"""What a spec costs to train: parameter counts and floating-point operations per generator step.

Counted, not guessed: both networks are built on the meta device (no memory, no weights) and one
example is run through each under torch's FlopCounterMode, which counts the matmuls and convolutions.
A training step is then assembled from those forward costs with the usual rule that a backward pass
costs twice its forward (Kaplan et al. 2020, "Scaling laws for neural language models", §2.1).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from wgan.config import PENALISED_KINDS, ModelSpec, TrainSpec, is_resolved, resolve
from wgan.networks import build_critic, build_generator, model_data_shape

BACKWARD_PER_FORWARD = 2
# The gradient penalty: a forward through the critic at the interpolates, the gradient to its input
# with its graph kept (a backward), then a backward through both for the weights: 1 + 2 + 2·3 forwards.
PENALTY_FORWARDS = 1 + BACKWARD_PER_FORWARD + 2 * (1 + BACKWARD_PER_FORWARD)


@dataclass(frozen=True)
class ModelCost:
    """One example through each network, forward only."""

    generator_params: int
    critic_params: int
    generator_flops: int
    critic_flops: int
    # Floats each network's layers output for one example: what its training keeps for the backward.
    generator_activations: int = 0
    critic_activations: int = 0


@dataclass(frozen=True)
class StepCost:
    generator_params: int
    critic_params: int
    flops_per_step: float  # one generator update with its n_critic critic updates, at the spec's batch
    updates_per_step: int  # optimizer steps in it (n_critic + 1): small models cost per update, not per FLOP

    @property
    def params(self) -> int:
        return self.generator_params + self.critic_params


def model_cost(model: ModelSpec) -> ModelCost:
    """Parameters and forward FLOPs per example of a resolved model spec."""
    return model_cost_json(model.model_dump_json())


@functools.lru_cache(maxsize=256)
def model_cost_json(model_json: str) -> ModelCost:
    """`model_cost` of a resolved model spec given as JSON text, cached by that text: pydantic models are
    not hashable, and a caller holding a stored spec need not validate it to find its cost."""
    model = ModelSpec.model_validate_json(model_json)
    shape = model_data_shape(model)
    assert model.latent_dim is not None
    with torch.device("meta"):
        generator = build_generator(model, shape)
        critic = build_critic(model, shape)
        z = torch.empty(1, model.latent_dim)
        x = torch.empty(1, *shape)
    # eval(): batch norm on one example would refuse to train; the FLOPs are the same.
    generator.eval()
    critic.eval()
    with FlopCounterMode(display=False) as counted, _ActivationCount(generator) as generator_activations:
        generator(z)
    generator_flops = counted.get_total_flops()
    with FlopCounterMode(display=False) as counted, _ActivationCount(critic) as critic_activations:
        critic(x)
    critic_flops = counted.get_total_flops()
    return ModelCost(
        generator_params=sum(p.numel() for p in generator.parameters()),
        critic_params=sum(p.numel() for p in critic.parameters()),
        generator_flops=int(generator_flops),
        critic_flops=int(critic_flops),
        generator_activations=generator_activations.total,
        critic_activations=critic_activations.total,
    )


def warm() -> None:
    """Count one small model, so that the first count a process makes for a request is not its first ever.

    The first forward on the meta device imports all of torch._dynamo (torch's meta kernel for a matmul
    is a Python decomposition that loads it lazily): 3-8 s here, against a few milliseconds for a new
    model after that. The API costs every job it is sent inside the job's transaction, where seconds of
    waiting would be a transaction left idle (and ended by Postgres's idle-in-transaction limit); it
    calls this at start instead.
    """
    toy = resolve(TrainSpec.model_validate({"dataset": {"name": "warm-up"}}), "points", (2,))
    model_cost(toy.model)


class _ActivationCount:
    """Sums the elements every leaf module of a network outputs while the block runs."""

    def __init__(self, network: torch.nn.Module) -> None:
        self.network = network
        self.total = 0
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def _count(self, module: torch.nn.Module, inputs: object, output: torch.Tensor) -> None:
        self.total += output.numel()

    def __enter__(self) -> _ActivationCount:
        leaves = [m for m in self.network.modules() if not list(m.children())]
        self._handles = [m.register_forward_hook(self._count) for m in leaves]
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()


def step_cost(spec: TrainSpec) -> StepCost:
    """The cost of one generator step of a resolved spec, with its n_critic critic steps."""
    if not is_resolved(spec):
        raise ValueError("the spec has unfilled defaults: pass it through wgan.config.resolve first")
    assert spec.n_critic is not None
    assert spec.batch_size is not None
    cost = model_cost(spec.model)
    g, d, batch = cost.generator_flops, cost.critic_flops, spec.batch_size
    train = 1 + BACKWARD_PER_FORWARD
    # A critic step: fakes without grad, then real and fake through the critic forward and back.
    critic_step = g + 2 * d * train
    if spec.loss.kind in PENALISED_KINDS:
        critic_step += d * PENALTY_FORWARDS
    # A generator step: forward through both, backward through the critic (to its input) and the generator.
    generator_step = (g + d) * train
    # The WGAN paper's schedule boosts some steps to 100 critic iterations; this is the steady-state cost.
    flops = batch * (spec.n_critic * critic_step + generator_step)
    return StepCost(cost.generator_params, cost.critic_params, float(flops), spec.n_critic + 1)
