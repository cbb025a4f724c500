"""Stacked training: runs trained as one follow the same runs trained alone, start from the same weights,
keep solo checkpoints both ways, leave the stack one by one, and only compatible runs are stacked."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from wgan import Hooks, assemble
from wgan.checkpoint import Checkpoint
from wgan.config import TrainSpec
from wgan.stacked import StackedTrainer, can_stack, stack_key
from wgan.trainer import Trainer

# The issue's own toy (MLP 128×3, batch 256), an MLP on images (flattened, a tanh output) and a small DCGAN
# on the digits: the MLPs run as one batched matmul per layer, the DCGAN through vmap.
MLP: dict[str, Any] = {"dataset": {"name": "8gaussians"}, "model": {"hidden_dim": 128, "depth": 3}, "batch_size": 256}
MLP_IMAGES: dict[str, Any] = {
    "dataset": {"name": "digits"},
    "model": {"arch": "mlp", "hidden_dim": 32, "depth": 2},
    "batch_size": 16,
}
DCGAN: dict[str, Any] = {"dataset": {"name": "digits"}, "model": {"hidden_dim": 8}, "batch_size": 16}
KINDS = ["wgan-gp", "wgan-lp", "wgan-clip", "vanilla"]
# What differs per run: the seed always, and the optimizer's learning rate (each run keeps its own).
PER_RUN = [{"seed": 0}, {"seed": 1, "optimizer": {"lr": 3e-4}}]
STEPS = 10


def spec(base: dict[str, Any], kind: str, **more: Any) -> TrainSpec:
    loss: dict[str, Any] = {"kind": kind}
    if kind == "wgan-clip":
        # Ten generator steps of the paper's schedule are a thousand critic updates: the constant one keeps
        # the comparison at ten steps of five.
        loss["critic_schedule"] = "constant"
    fields = {**base, "loss": loss, "steps": STEPS, "evaluate": False, "log_every": 1, "checkpoint_every": 1000}
    return TrainSpec.model_validate(_merge(fields, more))


def _merge(base: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in more.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and key in merged else value
    return merged


# Where 1e-4 holds for fewer than ten steps, and why. The critic's last layer (width → 1) is computed by
# MKL as a matrix-vector product alone and as a batched product in a stack: the same sum in another
# order, 1e-6 apart (and a grouped convolution sums in another order than one per run). Weight
# clipping's RMSprop (whose first updates are ±10 lr whatever the gradient's size) and the one-sided
# penalty amplify that rounding faster than the others; seeds apart, it stays within 1e-2.
CHAOTIC = {("8gaussians", "wgan-lp"): 5, ("8gaussians", "wgan-clip"): 5, ("digits", "wgan-clip"): 0}


def loosely_close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-2, abs_tol=1e-4)


def recording(store: list[tuple[float, float, float]]) -> Hooks:
    return Hooks(on_metrics=lambda p: store.append((p.critic_loss, p.generator_loss, p.wasserstein_estimate)))


def close(a: float, b: float) -> bool:
    # Relative, with an absolute floor for a mean of scores that cancels to almost nothing (a generator
    # loss of 1e-3 from scores of ±0.5): 1e-4 of a loss of 0.01.
    return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6)


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("base", [MLP, MLP_IMAGES, DCGAN], ids=["mlp", "mlp-images", "dcgan"])
def test_a_stacked_run_follows_the_same_run_alone(base: dict[str, Any], kind: str) -> None:
    specs = [spec(base, kind, **more) for more in PER_RUN]
    alone: list[list[tuple[float, float, float]]] = []
    for one in specs:
        alone.append([])
        assemble(one).trainer.fit(recording(alone[-1]))
    trainers = [assemble(one).trainer for one in specs]
    fresh = [assemble(one).trainer for one in specs]
    for trainer, solo in zip(trainers, fresh, strict=True):
        for ours, theirs in zip(
            trainer.generator.state_dict().values(), solo.generator.state_dict().values(), strict=True
        ):
            assert torch.equal(ours, theirs)  # bit-identical start
    together: list[list[tuple[float, float, float]]] = [[] for _ in specs]
    results = StackedTrainer(trainers).fit([recording(store) for store in together])
    assert [r.outcome for r in results] == ["completed"] * len(specs)
    exact_steps = CHAOTIC.get((base["dataset"]["name"], kind), STEPS)
    for solo_run, stacked_run in zip(alone, together, strict=True):
        assert len(solo_run) == len(stacked_run) == STEPS
        for step, (a, b) in enumerate(zip(solo_run, stacked_run, strict=True), start=1):
            near = close if step <= exact_steps else loosely_close
            assert all(near(x, y) for x, y in zip(a, b, strict=True)), (step, a, b)
    # The runs really differ from each other (seeds, learning rates): nothing was shared by mistake.
    assert len({run[-1] for run in together}) == len(specs)
    # Each run's own networks hold what it trained to (its checkpoints and samples read them).
    for trainer, store in zip(trainers, together, strict=True):
        assert trainer.step == STEPS and store
    weights = [torch.cat([p.flatten() for p in t.generator.parameters()]) for t in trainers]
    assert not torch.equal(weights[0], weights[1])


@pytest.mark.parametrize("kind", ["vanilla", "wgan-gp"])
def test_runs_in_channels_last_layout_stack_and_follow_themselves_alone(kind: str) -> None:
    # What a solo DCGAN uses on CUDA (Trainer); here on the CPU. Its second run has taken a step alone
    # first, so its optimizer's state is channels-last too when it joins.
    def channels_last(trainer: Trainer) -> Trainer:
        trainer.generator.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        trainer.critic.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        return trainer

    specs = [spec(DCGAN, kind, **more) for more in PER_RUN]
    alone: list[list[tuple[float, float, float]]] = []
    for one in specs:
        alone.append([])
        channels_last(assemble(one).trainer).fit(recording(alone[-1]))
    first, second = (channels_last(assemble(one).trainer) for one in specs)
    together: list[list[tuple[float, float, float]]] = [[], []]
    second.fit(Hooks(on_metrics=recording(together[1]).on_metrics, should_stop=lambda: second.step >= 1))
    first.fit(Hooks(on_metrics=recording(together[0]).on_metrics, should_stop=lambda: first.step >= 1))
    StackedTrainer([first, second]).fit([recording(store) for store in together])
    for solo_run, stacked_run in zip(alone, together, strict=True):
        assert len(stacked_run) == STEPS
        assert all(close(x, y) for a, b in zip(solo_run, stacked_run, strict=True) for x, y in zip(a, b, strict=True))


def checkpoints_at(step: int, store: dict[int, Checkpoint]) -> Hooks:
    def keep(checkpoint: Checkpoint) -> None:
        if checkpoint.step == step:
            store[checkpoint.step] = checkpoint

    return Hooks(on_checkpoint=keep)


@pytest.mark.parametrize("base", [MLP, DCGAN], ids=["mlp", "dcgan"])
def test_checkpoints_move_between_stack_and_solo(base: dict[str, Any]) -> None:
    half = STEPS // 2
    one = spec(base, "wgan-gp", checkpoint_every=half)
    other = spec(base, "wgan-gp", seed=3, checkpoint_every=half)
    straight: list[tuple[float, float, float]] = []
    assemble(one).trainer.fit(recording(straight))

    # Stacked to the middle, then alone to the end.
    kept: dict[int, Checkpoint] = {}
    first, second = assemble(one).trainer, assemble(other).trainer
    stop_half = Hooks(on_checkpoint=checkpoints_at(half, kept).on_checkpoint, should_stop=lambda: first.step >= half)
    StackedTrainer([first, second]).fit([stop_half, Hooks()])
    resumed = assemble(one).trainer
    resumed.restore(kept[half])
    rest: list[tuple[float, float, float]] = []
    resumed.fit(recording(rest))
    assert all(close(x, y) for a, b in zip(straight[half:], rest, strict=True) for x, y in zip(a, b, strict=True))

    # Alone to the middle, then stacked to the end.
    kept.clear()
    solo = assemble(one).trainer
    solo.fit(Hooks(on_checkpoint=checkpoints_at(half, kept).on_checkpoint, should_stop=lambda: solo.step >= half))
    again, companion = assemble(one).trainer, assemble(other).trainer
    again.restore(kept[half])
    companion.restore(_half_way(other, half))
    stacked_rest: list[tuple[float, float, float]] = []
    StackedTrainer([again, companion]).fit([recording(stacked_rest), Hooks()])
    assert all(
        close(x, y) for a, b in zip(straight[half:], stacked_rest, strict=True) for x, y in zip(a, b, strict=True)
    )


def _half_way(one: TrainSpec, half: int) -> Checkpoint:
    kept: dict[int, Checkpoint] = {}
    trainer = assemble(one).trainer
    trainer.fit(Hooks(on_checkpoint=checkpoints_at(half, kept).on_checkpoint, should_stop=lambda: trainer.step >= half))
    return kept[half]


def test_runs_leave_the_stack_one_by_one() -> None:
    specs = [spec(MLP, "wgan-gp", seed=seed) for seed in range(3)]
    trainers = [assemble(one).trainer for one in specs]
    checkpoints: list[list[int]] = [[] for _ in specs]

    def hooks(k: int, stop_at: int | None = None, fail_at: int | None = None) -> Hooks:
        def on_metrics(point: Any) -> None:
            if fail_at is not None and point.step == fail_at:
                raise RuntimeError("this run's recorder broke")

        return Hooks(
            on_metrics=on_metrics,
            on_checkpoint=lambda c: checkpoints[k].append(c.step),
            should_stop=lambda: stop_at is not None and trainers[k].step >= stop_at,
        )

    results = StackedTrainer(trainers).fit([hooks(0, stop_at=3), hooks(1, fail_at=6), hooks(2)])
    assert results[0].outcome == "stopped" and checkpoints[0] == [3] and trainers[0].step == 3
    assert isinstance(results[1].error, RuntimeError) and trainers[1].step == 6
    assert results[2].outcome == "completed" and trainers[2].step == STEPS and checkpoints[2] == [STEPS]
    # A run that left holds its own parameters, not slices of the stack's (which would keep the others').
    for left in trainers[:2]:
        for param in (*left.generator.parameters(), *left.critic.parameters()):
            assert param.untyped_storage().nbytes() == param.numel() * param.element_size()
    # The run that stayed trained on exactly as it would have alone.
    alone: list[tuple[float, float, float]] = []
    assemble(specs[2]).trainer.fit(recording(alone))
    stayed = assemble(specs[2]).trainer
    restacked: list[tuple[float, float, float]] = []
    StackedTrainer([stayed]).fit([recording(restacked)])
    assert all(close(x, y) for a, b in zip(alone, restacked, strict=True) for x, y in zip(a, b, strict=True))


def test_only_runs_that_share_their_shape_are_stacked() -> None:
    base = spec(MLP, "wgan-gp")
    same = [base, spec(MLP, "wgan-gp", seed=4, optimizer={"lr": 1e-2}, generator_ema=0.0)]
    assert stack_key(same[0]) == stack_key(same[1])
    for different in (
        spec(MLP, "wgan-gp", batch_size=32),
        spec(MLP, "wgan-gp", model={"hidden_dim": 64}),
        spec(MLP, "vanilla"),
        spec(MLP, "wgan-gp", n_critic=2),
        spec(MLP, "wgan-gp", steps=STEPS + 1),
        spec(DCGAN, "wgan-gp"),
    ):
        assert stack_key(different) != stack_key(base)
    assert stack_key(spec(MLP, "wgan-gp", model={"spectral_norm": True})) is None
    assert stack_key(spec(MLP, "wgan-gp", precision="bf16")) is None
    trainers = [assemble(one).trainer for one in same]
    assert can_stack(trainers)
    assert not can_stack([*trainers, assemble(spec(MLP, "wgan-gp", batch_size=32)).trainer])
    with pytest.raises(ValueError, match="cannot share a stack"):
        StackedTrainer([trainers[0], assemble(spec(MLP, "vanilla")).trainer])
    moved: Trainer = assemble(base).trainer
    moved.step = 4  # a run resumed elsewhere: not at the others' step
    assert not can_stack([trainers[0], moved])
