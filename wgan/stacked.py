"""Runs that fit together train together: K solo trainers whose forward and backward passes are done as
one, their parameters stacked along a leading run axis (a plain MLP runs as one batched matmul per layer;
other networks through torch.func.vmap, which makes each convolution a grouped one).

Each run stays a whole solo `Trainer`: its own networks (initialised from its own seed, so a stacked run
starts bit-identical to the same run alone), its own optimizers (so learning rate and betas may differ),
its own RNG (every draw, real batch, latents and penalty mixing, made from it in the solo order), its own
clip value and penalty weight, its own moving average, metric sums, checkpoints and restore. Only the
arithmetic is shared: each parameter of the stack is one tensor whose slices ARE the runs' own parameters
(views of its memory), so the stacked passes' gradients are handed to each run as slices and its optimizer
steps as it would alone, in place, on the stack's memory.

Small networks leave a GPU mostly idle, since each step is many small kernels; a stack makes each kernel
K times larger for the same count. On a CPU a solo run already keeps its core busy, so a stack gains what
cores a solo run leaves idle (BENCHMARKS.md, stacked, with this host's ceiling).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, vmap

from wgan.config import TrainSpec
from wgan.cost import model_cost
from wgan.losses import grad_norms, penalty_of
from wgan.networks import MLPCritic, MLPGenerator
from wgan.optim import match_parameter_layout
from wgan.trainer import Hooks, Outcome, Trainer

# Fields that runs of one stack may set differently: each run's own optimizer, RNG, clipping, penalty
# weight and moving average carry them. Everything else shapes the shared computation.
PER_RUN_FIELDS = {"name", "seed", "optimizer", "generator_ema", "evaluate"}
PER_RUN_LOSS_FIELDS = {"gp_weight", "clip_value"}


def stack_key(spec: TrainSpec) -> str | None:
    """Runs with the same key can train in one stack; None: this run always trains alone (compiled
    networks; spectral norm, whose power iterations are per-module state the stack does not carry; bf16,
    whose autocast the stack does not apply)."""
    if spec.compile or spec.model.spectral_norm or spec.precision != "fp32":
        return None
    shared = spec.model_dump(mode="json", exclude=PER_RUN_FIELDS | {"steps", "checkpoint_every", "log_every"})
    shared["loss"] = {k: v for k, v in shared["loss"].items() if k not in PER_RUN_LOSS_FIELDS}
    # The loop's shape: every run logs, checkpoints and ends at the same steps.
    shared["schedule"] = [spec.steps, spec.checkpoint_every, spec.log_every]
    return repr(sorted(shared.items()))


# A run's share of a stack's memory, in floats per parameter: the parameter (a slice of the stack's, no
# copy), its gradient, Adam's two moments, the moving average, and the contiguous copy made of a gradient
# the batched backward hands over transposed.
STATE_COPIES = 6
# Per example of the batch, in each network's activations: the generator's twice (the critic's fakes, the
# generator step); the critic's on real and fake, at the interpolates with the penalty's own graph
# (about three times a forward), and in the generator step.
GENERATOR_PASSES = 2
CRITIC_PASSES = 6
FLOAT_BYTES = 4


def run_bytes(spec: TrainSpec) -> int:
    """What one run adds to a stack's memory, estimated from its counted parameters and activations
    (wgan.cost, on the meta device): the bound a worker's stack size respects."""
    assert spec.batch_size is not None
    cost = model_cost(spec.model)
    params = cost.generator_params + cost.critic_params
    activations = spec.batch_size * (
        GENERATOR_PASSES * cost.generator_activations + CRITIC_PASSES * cost.critic_activations
    )
    return FLOAT_BYTES * (STATE_COPIES * params + activations)


def can_stack(trainers: Sequence[Trainer]) -> bool:
    keys = {stack_key(t.spec) for t in trainers}
    steps = {t.step for t in trainers}
    devices = {t.device for t in trainers}
    return None not in keys and len(keys) == 1 and len(steps) == 1 and len(devices) == 1


@dataclass
class RunResult:
    """How one run of a stack ended: its outcome, or what stopped it (TrainingDiverged, a hook's error)."""

    outcome: Outcome | None = None
    error: BaseException | None = None


@dataclass(frozen=True)
class _Layer:
    """One step of a plain MLP run on stacked tensors: a linear layer (the indices of its weight and bias
    among the parameters) or an activation."""

    kind: str
    weight: int = -1
    bias: int = -1
    slope: float = 0.0


def _mlp_program(template: nn.Module, names: list[str]) -> list[_Layer] | None:
    """The template as a sequence of stacked matmuls and activations, when it is an MLP of wgan.networks
    with nothing but linear layers and activations (no norms); None otherwise (vmap runs it)."""
    if not isinstance(template, MLPGenerator | MLPCritic):
        return None
    program: list[_Layer] = []
    for index, layer in enumerate(template.net):
        if isinstance(layer, nn.Linear) and layer.bias is not None:
            prefix = f"net.{index}."
            program.append(_Layer("linear", names.index(prefix + "weight"), names.index(prefix + "bias")))
        elif isinstance(layer, nn.ReLU):
            program.append(_Layer("relu"))
        elif isinstance(layer, nn.LeakyReLU):
            program.append(_Layer("leaky_relu", slope=layer.negative_slope))
        elif isinstance(layer, nn.Tanh):
            program.append(_Layer("tanh"))
        else:
            return None
    return program


class _Stacked:
    """One network of every run as a single batched function. Each parameter is one tensor stacked on dim 0
    (the leaf the stacked passes differentiate), and each run's own parameter is a view of its slice: an
    optimizer's step on a run's parameter, in place, is a step of the stacked tensor, with no stacking of
    parameters at each pass nor unstacking of their gradients. Plain MLPs run as one baddbmm per layer
    (bias and product in one kernel); other networks through vmap (batched matmuls, grouped convolutions).
    """

    def __init__(self, modules: Sequence[nn.Module]) -> None:
        self.modules = list(modules)
        self.template = modules[0]
        self.param_names = [name for name, _ in self.template.named_parameters()]
        self.buffer_names = [name for name, _ in self.template.named_buffers()]
        self._params = [list(m.parameters()) for m in self.modules]
        self._buffers = [list(m.buffers()) for m in self.modules]
        self.stacked: list[Tensor] = []
        for i in range(len(self.param_names)):
            # In the standard layout: vmap cannot run convolutions on channels-last weights (what a solo
            # DCGAN uses on CUDA), and every run's slice, its gradient and its optimizer's state must agree
            # (StackedTrainer._build brings the state along, wgan.optim.match_parameter_layout).
            with torch.no_grad():
                stacked = torch.stack([params[i].contiguous() for params in self._params])
            for k, params in enumerate(self._params):
                # .data: the run's Parameter object stays the one its optimizer and checkpoints know.
                params[i].data = stacked.data[k]
            self.stacked.append(stacked.requires_grad_(True))
        self._program = _mlp_program(self.template, self.param_names)

        def call(params: dict[str, Tensor], buffers: dict[str, Tensor], x: Tensor) -> Tensor:
            return functional_call(self.template, (params, buffers), (x,))

        self._batched = vmap(call, in_dims=(0, 0, 0))

    def __call__(self, x: Tensor) -> Tensor:
        """Each run's network on its own slice of x ([K, batch, ...] → [K, batch, ...]); training-mode
        batch-norm statistics are written back to each run's module, as its own forward would."""
        if self._program is not None:
            return self._mlp(x)
        params = dict(zip(self.param_names, self.stacked, strict=True))
        buffers = {name: torch.stack([bs[i] for bs in self._buffers]) for i, name in enumerate(self.buffer_names)}
        out = self._batched(params, buffers, x)
        if buffers and self.template.training:
            with torch.no_grad():
                for i, name in enumerate(self.buffer_names):
                    for k, own in enumerate(self._buffers):
                        own[i].copy_(buffers[name][k])
        return out

    def _mlp(self, x: Tensor) -> Tensor:
        assert self._program is not None
        runs, batch = x.shape[0], x.shape[1]
        h = x.flatten(2)
        for layer in self._program:
            if layer.kind == "linear":
                weight, bias = self.stacked[layer.weight], self.stacked[layer.bias]
                h = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))
            elif layer.kind == "relu":
                h = torch.relu(h)
            elif layer.kind == "leaky_relu":
                h = F.leaky_relu(h, layer.slope)
            else:
                h = torch.tanh(h)
        if isinstance(self.template, MLPGenerator):
            return h.view(runs, batch, *self.template.out_shape)
        return h.squeeze(-1)

    def hand_gradients(self, grads: Sequence[Tensor]) -> None:
        """Give each run's parameters their slices of the stacked parameters' gradients `grads`."""
        for i, grad in enumerate(grads):
            # In the stack's (standard) layout, as the fused optimizers read a parameter and its gradient
            # in one order; a batched backward may hand a gradient over transposed.
            whole = grad.contiguous()
            for k, params in enumerate(self._params):
                params[i].grad = whole[k]


class StackedTrainer:
    """K compatible solo trainers (stack_key) trained as one; `fit` returns each run's result."""

    def __init__(self, trainers: Sequence[Trainer]) -> None:
        if not trainers:
            raise ValueError("a stack needs at least one run")
        if not can_stack(trainers):
            raise ValueError("these runs cannot share a stack: their shapes, steps or devices differ")
        self.trainers = list(trainers)
        first = self.trainers[0]
        self.kind = first.kind
        self.batch_size = first.batch_size
        self.device = first.device
        self._penalised = first._penalised
        self._one_critic_pass = first._one_critic_pass
        self._active = list(range(len(self.trainers)))
        self._build()

    def _build(self) -> None:
        runs = [self.trainers[k] for k in self._active]
        self.generator = _Stacked([t.generator for t in runs])
        self.critic = _Stacked([t.critic for t in runs])
        for t in runs:
            match_parameter_layout(t.opt_generator)
            match_parameter_layout(t.opt_critic)
        weights = [t.spec.loss.gp_weight or 0.0 for t in runs]
        self._gp_weight = torch.tensor(weights, device=self.device)

    @property
    def step(self) -> int:
        return self.trainers[self._active[0]].step if self._active else self.trainers[0].step

    def fit(
        self, hooks: Sequence[Hooks], on_leave: Callable[[int, RunResult], None] = lambda k, result: None
    ) -> list[RunResult]:
        """Train every run to its last step. A run whose hook asks it to stop, whose losses diverge or whose
        hook fails leaves the stack at that step (checkpointed as it would be alone), `on_leave` hears of it
        at once, and the others go on."""
        if len(hooks) != len(self.trainers):
            raise ValueError("one Hooks per run")
        results = [RunResult() for _ in self.trainers]
        for trainer in self.trainers:
            trainer.begin()
        first = self.trainers[0]
        for step in range(first.step + 1, first.spec.steps + 1):
            for _ in range(first.critic_iterations(step)):
                self._critic_step()
            self._generator_step()
            leaving = []
            for k in self._active:
                try:
                    if self.trainers[k].after_step(step, hooks[k]):
                        results[k].outcome = "stopped"
                        leaving.append(k)
                except Exception as exc:
                    results[k].error = exc
                    leaving.append(k)
            for k in leaving:
                on_leave(k, results[k])
            if leaving:
                for k in leaving:
                    _own_memory(self.trainers[k])
                self._active = [k for k in self._active if k not in leaving]
                if not self._active:
                    break
                self._build()
        for k in self._active:
            results[k].outcome = "completed"
            on_leave(k, results[k])
        return results

    # --- one update of every run --------------------------------------------------------------

    def _runs(self) -> list[Trainer]:
        return [self.trainers[k] for k in self._active]

    def _critic_step(self) -> None:
        runs, batch = self._runs(), self.batch_size
        # Each run's draws from its own RNG, in the order it makes them alone: real, latents, then mixing.
        real = torch.stack([t.data.sample(batch, t.rng) for t in runs])
        z = torch.stack([t.noise(batch) for t in runs])
        with torch.no_grad():
            fake = self.generator(z)
        if self._one_critic_pass:
            scores = self.critic(torch.cat([real, fake], dim=1))
            d_real, d_fake = scores[:, :batch], scores[:, batch:]
        else:
            d_real, d_fake = self.critic(real), self.critic(fake)
        loss = _critic_losses(self.kind, d_real, d_fake)
        estimate = d_real.detach().mean(1) - d_fake.detach().mean(1)
        penalty: Tensor | None = None
        if self._penalised:
            penalty = self._penalty(runs, real, fake)
            loss = loss + self._gp_weight * penalty
        grads = torch.autograd.grad(loss.sum(), self.critic.stacked)
        self.critic.hand_gradients(grads)
        for k, t in enumerate(runs):
            t.opt_critic.step()
            t.clip_critic()
            t._sum_critic += loss[k].detach()
            t._sum_estimate += estimate[k]
            if penalty is not None:
                t._sum_penalty += penalty[k].detach()
            t._critic_updates += 1

    def _penalty(self, runs: list[Trainer], real: Tensor, fake: Tensor) -> Tensor:
        """Each run's E[(‖∇D(x̂)‖ − 1)²] (one-sided for WGAN-LP), as wgan.losses.gradient_penalty alone."""
        eps_shape = (real.shape[1],) + (1,) * (real.dim() - 2)
        eps = torch.stack([torch.rand(eps_shape, generator=t.rng, device=self.device) for t in runs])
        points = torch.lerp(fake, real, eps).detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(self.critic(points).sum(), points, create_graph=True)
        return penalty_of(grad_norms(grad, batch_dims=2), one_sided=self.kind == "wgan-lp")

    def _generator_step(self) -> None:
        runs = self._runs()
        z = torch.stack([t.noise(self.batch_size) for t in runs])
        loss = _generator_losses(self.kind, self.critic(self.generator(z)))
        # Gradients for the generator only: the critic's would be computed and thrown away.
        self.generator.hand_gradients(torch.autograd.grad(loss.sum(), self.generator.stacked))
        for k, t in enumerate(runs):
            t.opt_generator.step()
            t.update_average()
            t._sum_generator += loss[k].detach()
            t._generator_updates += 1


def _own_memory(trainer: Trainer) -> None:
    """A run that leaves the stack takes its parameters into memory of its own: as slices of the stack's
    they would keep every other run's parameters and gradients alive for as long as it lives."""
    for param in (*trainer.generator.parameters(), *trainer.critic.parameters()):
        param.data = param.data.clone()
        param.grad = None


def _critic_losses(kind: str, d_real: Tensor, d_fake: Tensor) -> Tensor:
    """wgan.losses.critic_loss for each run: [K, batch] scores → [K] losses."""
    if kind == "vanilla":
        return F.softplus(-d_real).mean(1) + F.softplus(d_fake).mean(1)
    return d_fake.mean(1) - d_real.mean(1)


def _generator_losses(kind: str, d_fake: Tensor) -> Tensor:
    if kind == "vanilla":
        return F.softplus(-d_fake).mean(1)
    return -d_fake.mean(1)
