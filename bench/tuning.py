"""What makes the trainer faster: variants of its steps, each timed against the engine's trainer.

The engine is not edited: `TunedTrainer` subclasses `wgan.trainer.Trainer` and replaces its two step
methods with a copy that can switch each change on or off. Every variant is timed interleaved with the
unmodified trainer, through the same `Trainer.fit` and the same hooks (metrics every 10 steps, a
checkpoint every 500), and reported as variant ÷ engine, the median over rounds.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from bench.common import Benchmark, Context, Result, median, num, table
from bench.pairs import CASES, Case, TrainerSide, calibrate, make_run, max_param_difference
from wgan import Run, Trainer, TrainSpec
from wgan.data.sources import DataSource
from wgan.losses import clip_weights_, critic_loss, generator_loss, gradient_penalty


@dataclass(frozen=True)
class Tweaks:
    optimizer: Literal["engine", "plain"] = "engine"  # plain: no foreach or fused kernels
    cat_critic: bool = True  # one critic forward on cat(real, fake), as the engine does
    metrics: bool = True  # the per-step metric sums on the device
    channels_last: bool = False
    compile: bool = False  # torch.compile the generator and (outside the penalty) the critic
    set_to_none: bool = True
    foreach_clamp: bool = True
    generator_grads_only: bool = True  # autograd.grad for the generator's parameters only
    flush_denormal: bool = False


class TunedTrainer(Trainer):
    """The engine's trainer with its step methods copied here, each change switchable."""

    def __init__(self, spec: TrainSpec, data: DataSource, device: torch.device, tweaks: Tweaks) -> None:
        super().__init__(spec, data, device)
        self.tweaks = tweaks
        if tweaks.optimizer != "engine":
            self.opt_generator = self._optimizer(self.generator.parameters())
            self.opt_critic = self._optimizer(self.critic.parameters())
        if tweaks.channels_last and spec.model.arch == "dcgan":
            self.generator.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
            self.critic.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self._g: nn.Module = self.generator
        self._d: nn.Module = self.critic
        if tweaks.compile:
            self._g = torch.compile(self.generator)  # type: ignore[assignment]
            self._d = torch.compile(self.critic)  # type: ignore[assignment]

    def _optimizer(self, params: Any) -> torch.optim.Optimizer:
        o = self.spec.optimizer
        assert o.lr is not None
        # Only "plain" gets here: the engine's own optimizers use foreach (RMSprop) and fused (Adam).
        if o.kind == "rmsprop":
            return torch.optim.RMSprop(params, lr=o.lr, foreach=False)
        return torch.optim.Adam(params, lr=o.lr, betas=o.betas or (0.9, 0.999), foreach=False, fused=False)

    def _layout(self, x: Tensor) -> Tensor:
        if self.tweaks.channels_last and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def _critic_step(self) -> None:
        tw = self.tweaks
        batch = self.batch_size
        real = self._layout(self.data.sample(batch, self.rng))
        z = self.noise(batch)
        with torch.no_grad():
            fake = self._g(z)
        if tw.cat_critic:
            scores = self._d(torch.cat([real, fake]))
            d_real, d_fake = scores[:batch], scores[batch:]
        else:
            d_real, d_fake = self._d(real), self._d(fake)
        loss = critic_loss(self.kind, d_real, d_fake)
        if self._penalised:
            assert self.spec.loss.gp_weight is not None
            penalty = gradient_penalty(self.critic, real, fake, one_sided=self.kind == "wgan-lp", generator=self.rng)
            loss = loss + self.spec.loss.gp_weight * penalty
            if tw.metrics:
                self._sum_penalty += penalty.detach()
        self.opt_critic.zero_grad(set_to_none=tw.set_to_none)
        loss.backward()
        self.opt_critic.step()
        if self.kind == "wgan-clip":
            assert self.spec.loss.clip_value is not None
            if tw.foreach_clamp:
                clip_weights_(self._critic_params, self.spec.loss.clip_value)
            else:
                with torch.no_grad():
                    for p in self._critic_params:
                        p.clamp_(-self.spec.loss.clip_value, self.spec.loss.clip_value)
        if tw.metrics:
            self._sum_critic += loss.detach()
            self._sum_estimate += d_real.detach().mean() - d_fake.detach().mean()
        self._critic_updates += 1

    def _generator_step(self) -> None:
        z = self.noise(self.batch_size)
        loss = generator_loss(self.kind, self._d(self._g(z)))
        if self.tweaks.generator_grads_only:
            grads = torch.autograd.grad(loss, self._gen_params)
            for param, grad in zip(self._gen_params, grads, strict=True):
                param.grad = grad
        else:
            self.opt_generator.zero_grad(set_to_none=self.tweaks.set_to_none)
            loss.backward()  # the critic's gradients too, thrown away at its next zero_grad
        self.opt_generator.step()
        if self.tweaks.metrics:
            self._sum_generator += loss.detach()
        self._generator_updates += 1


@contextlib.contextmanager
def denormals_flushed(on: bool) -> Iterator[None]:
    if not on:
        yield
        return
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    tweaks: Tweaks
    applies: tuple[str, ...] = ("gp", "clip")  # loss kinds
    images_only: bool = False
    counterfactual: bool = False  # undoes something the engine already does, to show what it gains
    engine_spec: dict[str, Any] | None = None  # the unmodified trainer, with these spec fields instead


VARIANTS: tuple[Variant, ...] = (
    Variant("copy", "the engine's steps copied into bench/ unchanged (control)", Tweaks()),
    Variant(
        "plain-optim",
        "optimizers without the fused (Adam) or foreach (RMSprop) kernels",
        Tweaks(optimizer="plain"),
        counterfactual=True,
    ),
    Variant(
        "two-critic-passes", "the critic run on real and fake apart", Tweaks(cat_critic=False), counterfactual=True
    ),
    Variant("channels-last", "channels_last nets and batches", Tweaks(channels_last=True), images_only=True),
    Variant("compile", "torch.compile generator and critic (not the penalty's double backward)", Tweaks(compile=True)),
    Variant(
        "spec-compile",
        "the engine's own `compile: true` spec option (unmodified trainer)",
        Tweaks(),
        engine_spec={"compile": True},
    ),
    Variant("flush-denormal", "torch.set_flush_denormal(True)", Tweaks(flush_denormal=True)),
    Variant("no-metrics", "no per-step metric sums (what the device-side sums cost)", Tweaks(metrics=False)),
    Variant(
        "no-set-to-none",
        "zero_grad(set_to_none=False)",
        Tweaks(set_to_none=False),
        counterfactual=True,
    ),
    Variant(
        "per-param-clamp",
        "a clamp_ per parameter instead of _foreach_clamp",
        Tweaks(foreach_clamp=False),
        applies=("clip",),
        counterfactual=True,
    ),
    Variant(
        "generator-backward",
        "generator step via loss.backward() (critic weight gradients too)",
        Tweaks(generator_grads_only=False),
        counterfactual=True,
    ),
)


def applicable(variant: Variant, case: Case) -> bool:
    kind = "gp" if case.spec["loss"]["kind"] == "wgan-gp" else "clip"
    images = case.spec["dataset"]["name"] == "digits"
    return kind in variant.applies and (images or not variant.images_only)


def tuned(run: Run, tweaks: Tweaks) -> TunedTrainer:
    return TunedTrainer(run.spec, run.trainer.data, run.trainer.device, tweaks)


def variant_trainer(case: Case, variant: Variant) -> Trainer:
    if variant.engine_spec is not None:
        return make_run(case, **variant.engine_spec).trainer
    return tuned(make_run(case), variant.tweaks)


class VariantSide(TrainerSide):
    def __init__(self, trainer: Trainer, flush_denormal: bool) -> None:
        super().__init__(trainer)
        self.flush = flush_denormal

    def __call__(self, steps: int) -> float:
        with denormals_flushed(self.flush):
            return super().__call__(steps)


def agreement(case: Case, variant: Variant, steps: int = 2) -> float:
    """Max |Δparam| between the engine and the variant after `steps` steps from the same start."""
    engine = make_run(case)
    trainer = variant_trainer(case, variant)
    for t in (engine.trainer, trainer):
        t.spec = t.spec.model_copy(update={"steps": steps})
        with denormals_flushed(variant.tweaks.flush_denormal and t is trainer):
            t.fit()
    return max(
        max_param_difference(engine.trainer.generator, trainer.generator),
        max_param_difference(engine.trainer.critic, trainer.critic),
    )


def compiled(variant: Variant) -> bool:
    return variant.tweaks.compile or bool(variant.engine_spec and variant.engine_spec.get("compile"))


def tune_case(case: Case, ctx: Context) -> dict[str, Any]:
    variants = [v for v in VARIANTS if applicable(v, case)]
    rounds = 2 if ctx.quick else 5
    target = 0.5 if ctx.quick else 4.0
    base = TrainerSide(make_run(case).trainer)
    sides: dict[str, TrainerSide] = {}
    try:
        steps = calibrate(base, target)
        failed: dict[str, str] = {}
        for variant in variants:
            print(f"tuning: {case.name} {variant.name}", flush=True)
            side: TrainerSide = VariantSide(variant_trainer(case, variant), variant.tweaks.flush_denormal)
            try:
                side(2)  # warm-up (and compilation)
            except Exception as exc:  # a variant that does not run is a result too
                failed[variant.name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                side.close()
                continue
            sides[variant.name] = side
        variants = [v for v in variants if v.name in sides]
        engine_rates: list[float] = []
        rates: dict[str, list[float]] = {v.name: [] for v in variants}
        for round_index in range(rounds):
            engine_rates.append(base(steps))
            shift = round_index % len(variants)
            for variant in variants[shift:] + variants[:shift]:
                rates[variant.name].append(sides[variant.name](steps))
        engine_rates.append(base(steps))  # so that every round is bracketed by two engine trials
    finally:
        base.close()
        for side in sides.values():
            side.close()
    results = []
    for variant in variants:
        # Each round's rate against the mean of the engine's trials just before and just after the round.
        brackets = [(a + b) / 2 for a, b in itertools.pairwise(engine_rates)]
        ratios = [v / e for v, e in zip(rates[variant.name], brackets, strict=True)]
        results.append(
            {
                "variant": variant.name,
                "description": variant.description,
                "counterfactual": variant.counterfactual,
                "tweaks": asdict(variant.tweaks),
                "steps_per_s": rates[variant.name],
                "ratio_median": median(ratios),
                "ratio_min": min(ratios),
                "ratio_max": max(ratios),
                "max_abs_diff_after_2_steps": None if compiled(variant) else agreement(case, variant),
            }
        )
    return {
        "case": case.name,
        "title": case.title,
        "steps_per_trial": steps,
        "rounds": rounds,
        "engine_steps_per_s": engine_rates,
        "engine_median": median(engine_rates),
        "variants": results,
        "failed": failed,
    }


def run(ctx: Context) -> Result:
    return {"threads": torch.get_num_threads(), "cases": [tune_case(case, ctx) for case in CASES]}


def render(data: Result) -> str:
    names = [v.name for v in VARIANTS]
    descriptions = {v.name: v.description for v in VARIANTS}
    counterfactual = {v.name: v.counterfactual for v in VARIANTS}
    cases = data["cases"]
    header = ["variant", *[c["case"] for c in cases]]
    rows = []
    for name in names:
        cells = []
        for c in cases:
            found = next((v for v in c["variants"] if v["variant"] == name), None)
            if name in c.get("failed", {}):
                cells.append("failed")
            elif found is None:
                cells.append("n/a")
            else:
                cells.append(f"{found['ratio_median']:.3f} ({found['ratio_min']:.2f}–{found['ratio_max']:.2f})")
        marker = " †" if counterfactual[name] else ""
        rows.append((f"`{name}`{marker}: {descriptions[name]}", *cells))
    rows.append(("engine trainer, steps/s (median)", *[num(c["engine_median"], 2) for c in cases]))
    diffs = []
    for name in names:
        cells = []
        for c in cases:
            found = next((v for v in c["variants"] if v["variant"] == name), None)
            diff = None if found is None else found["max_abs_diff_after_2_steps"]
            cells.append("–" if diff is None else f"{diff:.1e}")
        diffs.append((f"`{name}`", *cells))
    failures = "\n".join(
        f"- `{name}` on {c['case']}: {message}" for c in cases for name, message in c.get("failed", {}).items()
    )
    failures = f"Variants that did not run:\n\n{failures}\n" if failures else ""
    return f"""\
Each variant is a copy of the trainer's step methods in `bench/tuning.py` (a subclass of
`wgan.trainer.Trainer`; the engine itself is untouched) with one change. Each is timed against the unmodified
trainer in the same rounds (an engine trial, every variant in a rotating order, and an engine trial again),
through `Trainer.fit` with the same hooks as the speed benchmark, and given as variant steps/s ÷ the mean of
the two engine trials around it: the median over
{cases[0]["rounds"]} rounds, with the range. Above 1 is faster. † marks counterfactuals: they undo something
the engine already does, so below 1 is what the engine's choice gains.

{table(header, rows)}

How far each variant's parameters end from the engine's after two steps from the same start (a check
that it trains the same model; rounding differences only, as summation orders change; not run for compile):

{table(header, diffs)}

{failures}"""


BENCHMARK = Benchmark(
    name="tuning",
    title="Speed tuning: what makes the trainer faster",
    summary="variants of the trainer's steps (foreach/fused optimizers, one critic forward, channels_last, "
    "torch.compile, …) timed against the engine",
    run=run,
    render=render,
)
