"""The training loop: n_critic critic updates, then one generator update, with service hooks."""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from wgan.checkpoint import (
    CRITIC,
    GENERATOR,
    GENERATOR_EMA,
    OPT_CRITIC,
    OPT_GENERATOR,
    RNG,
    Checkpoint,
    CheckpointError,
)
from wgan.config import PENALISED_KINDS, TrainSpec, is_resolved
from wgan.data.sources import DataSource
from wgan.devices import pick_device
from wgan.losses import clip_weights_, critic_loss, generator_loss, gradient_penalty
from wgan.networks import build_critic, build_generator, model_data_shape
from wgan.optim import load_optimizer_state, make_optimizer, optimizer_state

# The WGAN paper's schedule: many critic iterations early and now and then, to keep it near optimal.
PAPER_WARMUP_GEN_ITERS = 25
PAPER_BOOST_EVERY = 500
PAPER_BOOST_CRITIC_ITERS = 100

# Spec fields that may differ between a checkpoint and the job resuming from it.
RESUMABLE_CHANGES = {"name", "steps", "checkpoint_every", "log_every", "device", "evaluate", "compile"}


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite: the run stops instead of training on garbage."""


@dataclass
class MetricPoint:
    step: int
    critic_loss: float
    generator_loss: float
    wasserstein_estimate: float
    gradient_penalty: float | None
    seconds_per_step: float
    evaluation: dict[str, float] = field(default_factory=dict)
    # Why the evaluation at this checkpoint failed, when it did: training goes on without its measures.
    evaluation_error: str | None = None


@dataclass
class Hooks:
    """How the trainer talks to whoever runs it. Each is called on the training thread."""

    on_metrics: Callable[[MetricPoint], None] = lambda point: None
    on_checkpoint: Callable[[Checkpoint], None] = lambda checkpoint: None
    should_stop: Callable[[], bool] = lambda: False
    # Measures the generator against the data (e.g. the exact W1) at each checkpoint. What it raises is
    # recorded on the point (evaluation_error), never stops training.
    evaluate: Callable[[Trainer], dict[str, float]] | None = None


Outcome = Literal["completed", "stopped"]


class Trainer:
    def __init__(self, spec: TrainSpec, data: DataSource, device: torch.device | None = None) -> None:
        if not is_resolved(spec):
            raise ValueError("the spec has unfilled defaults: pass it through wgan.config.resolve first")
        self.spec = spec
        assert spec.batch_size is not None
        self.batch_size: int = spec.batch_size
        self.data = data
        self.device = device or pick_device(spec.device)
        self.kind = spec.loss.kind
        # Networks are initialised from the seed on the CPU, so CPU and CUDA runs start alike,
        # without disturbing the caller's global RNG.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.seed)
            shape = model_data_shape(spec.model)
            self.generator = build_generator(spec.model, shape).to(self.device)
            self.critic = build_critic(spec.model, shape).to(self.device)
        if self.device.type == "cuda":
            # Fixed shapes every step: let cuDNN pick its fastest kernels once.
            torch.backends.cudnn.benchmark = True
            if spec.model.arch == "dcgan":
                self.generator.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
                self.critic.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.opt_generator = make_optimizer(spec.optimizer, self.generator.parameters())
        self.opt_critic = make_optimizer(spec.optimizer, self.critic.parameters())
        self.rng = torch.Generator(self.device).manual_seed(spec.seed)
        self.step = 0
        self._gen_params = [p for p in self.generator.parameters()]
        self._critic_params = [p for p in self.critic.parameters()]
        # The averaged generator starts as the generator itself; batch-norm statistics are copied, not averaged.
        self.generator_ema: torch.nn.Module | None = None
        if spec.generator_ema:
            self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False)
            self._ema_params = list(self.generator_ema.parameters())
        if self.kind == "wgan-clip":
            # Start inside the clipping box, as the WGAN code does, so no critic gradient is taken
            # on weights the constraint forbids.
            assert spec.loss.clip_value is not None
            clip_weights_(self._critic_params, spec.loss.clip_value)
        self._bf16 = spec.precision == "bf16" and self.device.type == "cuda"
        # Real and fake through the critic in one batch: one pass of larger matmuls is faster. Not with
        # batch norm in the critic, whose statistics must stay per batch as the DCGAN recipe has them.
        self._one_critic_pass = spec.model.critic_norm != "batch"
        self._penalised = self.kind in PENALISED_KINDS
        # Compiled forwards; the modules themselves stay plain for state_dict and checkpoints.
        self._generate = torch.compile(self.generator) if spec.compile else self.generator
        self._criticise = torch.compile(self.critic) if spec.compile and not self._penalised else self.critic
        self._reset_sums()

    # --- the loop ---------------------------------------------------------------------------

    def fit(self, hooks: Hooks | None = None) -> Outcome:
        """Train up to `spec.steps` generator steps from the current step."""
        hooks = hooks or Hooks()
        self.begin()
        for step in range(self.step + 1, self.spec.steps + 1):
            for _ in range(self.critic_iterations(step)):
                self._critic_step()
            self._generator_step()
            if self.after_step(step, hooks):
                return "stopped"
        return "completed"

    def begin(self) -> None:
        """Ready to train from the current step: the networks in training mode, the clock started."""
        self._interval_start = (self.step, time.perf_counter())
        self.generator.train()
        self.critic.train()

    def after_step(self, step: int, hooks: Hooks) -> bool:
        """Everything after generator step `step`'s update: metrics, evaluation and checkpoint when due, and
        whether to stop early. Raises TrainingDiverged. wgan.stacked calls it for each run of a stack."""
        self.step = step
        total = self.spec.steps
        stopping = hooks.should_stop()
        checkpoint_now = step % self.spec.checkpoint_every == 0 or step == total or stopping
        if checkpoint_now or step % self.spec.log_every == 0:
            point = self._flush_metrics()
            if hooks.evaluate and checkpoint_now:
                try:
                    point.evaluation = hooks.evaluate(self)
                except Exception as exc:
                    point.evaluation_error = f"{type(exc).__name__}: {exc}"
                # The evaluation's time is not training time: the next interval starts after it.
                self._interval_start = (step, time.perf_counter())
            hooks.on_metrics(point)
        if checkpoint_now:
            hooks.on_checkpoint(self.checkpoint())
        return stopping and step < total

    def critic_iterations(self, step: int) -> int:
        """Critic updates before generator step `step` (1-based)."""
        assert self.spec.n_critic is not None
        gen_iter = step - 1
        if self.spec.loss.critic_schedule == "paper" and (
            gen_iter < PAPER_WARMUP_GEN_ITERS or gen_iter % PAPER_BOOST_EVERY == 0
        ):
            return PAPER_BOOST_CRITIC_ITERS
        return self.spec.n_critic

    def _critic_step(self) -> None:
        batch = self.batch_size
        real = self.data.sample(batch, self.rng)
        z = self.noise(batch)
        with self._autocast():
            with torch.no_grad():
                fake = self._generate(z)
            if self._one_critic_pass:
                scores = self._criticise(torch.cat([real, fake]))
                d_real, d_fake = scores[:batch], scores[batch:]
            else:
                d_real = self._criticise(real)
                d_fake = self._criticise(fake)
            loss = critic_loss(self.kind, d_real, d_fake)
        estimate = d_real.detach().float().mean() - d_fake.detach().float().mean()
        if self._penalised:
            # The penalty runs in fp32 whatever the precision: bf16 gradients of gradients are too coarse.
            penalty = gradient_penalty(
                self.critic, real.float(), fake.float(), one_sided=self.kind == "wgan-lp", generator=self.rng
            )
            assert self.spec.loss.gp_weight is not None
            loss = loss.float() + self.spec.loss.gp_weight * penalty
            self._sum_penalty += penalty.detach()
        self.opt_critic.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_critic.step()
        self.clip_critic()
        self._sum_critic += loss.detach().float()
        self._sum_estimate += estimate
        self._critic_updates += 1

    def _generator_step(self) -> None:
        z = self.noise(self.batch_size)
        with self._autocast():
            loss = generator_loss(self.kind, self._criticise(self._generate(z)))
        # Gradients for the generator only: the critic's would be computed and thrown away.
        grads = torch.autograd.grad(loss, self._gen_params)
        for param, grad in zip(self._gen_params, grads, strict=True):
            param.grad = grad
        self.opt_generator.step()
        self.update_average()
        self._sum_generator += loss.detach().float()
        self._generator_updates += 1

    def clip_critic(self) -> None:
        """After each critic update: WGAN's weight clipping, for the kind that has it."""
        if self.kind == "wgan-clip":
            assert self.spec.loss.clip_value is not None
            clip_weights_(self._critic_params, self.spec.loss.clip_value)

    def update_average(self) -> None:
        """After each generator update: the moving average of its weights, when the spec keeps one."""
        if self.generator_ema is not None:
            assert self.spec.generator_ema is not None
            with torch.no_grad():
                for average, param in zip(self._ema_params, self._gen_params, strict=True):
                    average.lerp_(param, 1.0 - self.spec.generator_ema)

    @property
    def sampling_generator(self) -> torch.nn.Module:
        """The generator that samples and is evaluated: the moving average when the spec keeps one."""
        if self.generator_ema is None:
            return self.generator
        for average, live in zip(self.generator_ema.buffers(), self.generator.buffers(), strict=True):
            average.copy_(live)
        return self.generator_ema

    def noise(self, n: int) -> Tensor:
        assert self.spec.model.latent_dim is not None
        return torch.randn(n, self.spec.model.latent_dim, generator=self.rng, device=self.device)

    def _autocast(self) -> contextlib.AbstractContextManager[None]:
        if self._bf16:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # --- metrics: summed on the device, read once per log interval ---------------------------

    def _reset_sums(self) -> None:
        zero = torch.zeros((), device=self.device)
        self._sum_critic, self._sum_generator = zero.clone(), zero.clone()
        self._sum_estimate, self._sum_penalty = zero.clone(), zero.clone()
        self._critic_updates = self._generator_updates = 0

    def _flush_metrics(self) -> MetricPoint:
        sums = torch.stack([self._sum_critic, self._sum_generator, self._sum_estimate, self._sum_penalty]).tolist()
        critic_n, gen_n = max(self._critic_updates, 1), max(self._generator_updates, 1)
        critic, estimate, penalty = sums[0] / critic_n, sums[2] / critic_n, sums[3] / critic_n
        generator = sums[1] / gen_n
        start_step, start_time = self._interval_start
        now = time.perf_counter()
        self._interval_start = (self.step, now)
        for name, value in (("critic_loss", critic), ("generator_loss", generator), ("wasserstein_estimate", estimate)):
            if not math.isfinite(value):
                raise TrainingDiverged(
                    f"training diverged: {name} became {value} between steps {start_step + 1} and {self.step}"
                )
        self._reset_sums()
        return MetricPoint(
            step=self.step,
            critic_loss=critic,
            generator_loss=generator,
            wasserstein_estimate=estimate,
            gradient_penalty=penalty if self._penalised else None,
            seconds_per_step=(now - start_time) / max(self.step - start_step, 1),
        )

    # --- checkpoints ------------------------------------------------------------------------

    def checkpoint(self) -> Checkpoint:
        """A snapshot of the training state, copied to the CPU.

        Copied because state_dict() tensors share storage with the live parameters and optimizer
        state: a checkpoint kept past the hook (saved later, or on another thread) would otherwise
        change under its holder as training goes on.
        """
        tensors: dict[str, Tensor] = {}
        tensors.update({GENERATOR + k: _snapshot(v) for k, v in self.generator.state_dict().items()})
        tensors.update({CRITIC + k: _snapshot(v) for k, v in self.critic.state_dict().items()})
        if self.generator_ema is not None:
            averaged = self.sampling_generator.state_dict()
            tensors.update({GENERATOR_EMA + k: _snapshot(v) for k, v in averaged.items()})
        extra: dict[str, object] = {}
        for prefix, optimizer in ((OPT_CRITIC, self.opt_critic), (OPT_GENERATOR, self.opt_generator)):
            opt_tensors, opt_meta = optimizer_state(optimizer)
            tensors.update({prefix + k: _snapshot(v) for k, v in opt_tensors.items()})
            extra[prefix.rstrip(".")] = copy.deepcopy(opt_meta)
        tensors[RNG + "train"] = self.rng.get_state()
        return Checkpoint(step=self.step, spec=self.spec, tensors=tensors, extra=extra)

    def restore(self, checkpoint: Checkpoint) -> None:
        """Continue from `checkpoint`: the same networks, optimizers, step and RNG state.

        Refuses a checkpoint made with a different model, loss, optimizer, batch or seed.
        """
        stored = checkpoint.spec.model_dump(exclude=RESUMABLE_CHANGES)
        wanted = self.spec.model_dump(exclude=RESUMABLE_CHANGES)
        if stored != wanted:
            changed = sorted(key for key in wanted if stored.get(key) != wanted[key])
            raise CheckpointError(f"the checkpoint was made with a different spec ({', '.join(changed)} differ)")
        if checkpoint.step > self.spec.steps:
            raise CheckpointError(f"the checkpoint is at step {checkpoint.step}, past this job's {self.spec.steps}")
        try:
            self.generator.load_state_dict(checkpoint.part(GENERATOR))
            if self.generator_ema is not None:
                self.generator_ema.load_state_dict(checkpoint.part(GENERATOR_EMA))
            self.critic.load_state_dict(checkpoint.part(CRITIC))
            load_optimizer_state(self.opt_critic, checkpoint.part(OPT_CRITIC), checkpoint.extra["opt_critic"])
            load_optimizer_state(self.opt_generator, checkpoint.part(OPT_GENERATOR), checkpoint.extra["opt_generator"])
            self.rng.set_state(checkpoint.tensors[RNG + "train"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"the checkpoint does not fit these networks: {exc}") from exc
        self.step = checkpoint.step
        self._reset_sums()


def _snapshot(tensor: Tensor) -> Tensor:
    return tensor.detach().to("cpu", copy=True)
