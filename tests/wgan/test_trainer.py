"""The trainer: schedule, metrics, seeding, divergence, stopping, and resuming to the identical next steps."""

import math

import pytest
import torch

from tests.wgan.helpers import TINY_DIGITS, comparable, run_points, tiny_spec, tiny_trainer
from wgan import CheckpointError, Hooks, Trainer, TrainingDiverged, assemble
from wgan.checkpoint import load_checkpoint, save_checkpoint


def test_paper_critic_schedule():
    trainer = tiny_trainer(loss={"kind": "wgan-clip"}, n_critic=5)
    assert trainer.spec.loss.critic_schedule == "paper"
    # As in the WGAN code: gen_iterations < 25 or gen_iterations % 500 == 0, counting from 0,
    # so generator steps 1..25, then 501, 1001, ... get 100 critic iterations.
    iterations = {step: trainer.critic_iterations(step) for step in range(1, 1102)}
    boosted = {step for step, n in iterations.items() if n == 100}
    assert boosted == set(range(1, 26)) | {501, 1001}
    assert all(n == 5 for step, n in iterations.items() if step not in boosted)


def test_constant_schedule_is_always_n_critic():
    trainer = tiny_trainer(loss={"kind": "wgan-clip", "critic_schedule": "constant"}, n_critic=3)
    assert {trainer.critic_iterations(step) for step in range(1, 1100)} == {3}
    assert {tiny_trainer(loss={"kind": "wgan-gp"}).critic_iterations(s) for s in (1, 25, 501)} == {5}


def test_runs_the_scheduled_number_of_updates():
    trainer = tiny_trainer(loss={"kind": "wgan-gp"}, n_critic=3, steps=4)
    calls = {"critic": 0, "generator": 0}
    critic_step, generator_step = trainer._critic_step, trainer._generator_step

    def count_critic():
        calls["critic"] += 1
        critic_step()

    def count_generator():
        calls["generator"] += 1
        generator_step()

    trainer._critic_step, trainer._generator_step = count_critic, count_generator
    assert trainer.fit() == "completed"
    assert calls == {"critic": 12, "generator": 4}
    assert trainer.step == 4


def test_metrics_every_log_every_steps_with_the_penalty_only_where_there_is_one():
    points = run_points(tiny_trainer(steps=7, log_every=3))
    # Every 3rd step, and the last step, where a checkpoint is made, always gets a point.
    assert [p.step for p in points] == [3, 6, 7]
    for point in points:
        assert all(math.isfinite(v) for v in (point.critic_loss, point.generator_loss, point.wasserstein_estimate))
        assert point.gradient_penalty is not None
        assert point.gradient_penalty >= 0
        assert point.seconds_per_step > 0
    for kind in ("wgan-clip", "vanilla"):
        (last,) = run_points(tiny_trainer(loss={"kind": kind, "critic_schedule": "constant"}, steps=2, log_every=2))
        assert last.gradient_penalty is None


def test_wasserstein_estimate_is_the_mean_critic_gap_over_the_interval():
    # For the clipped kind the critic loss is exactly −(E[D(real)] − E[D(fake)]).
    (point,) = run_points(tiny_trainer(loss={"kind": "wgan-clip", "critic_schedule": "constant"}, steps=3, log_every=3))
    assert point.wasserstein_estimate == pytest.approx(-point.critic_loss, rel=1e-5, abs=1e-9)


def test_penalised_critic_loss_is_the_negated_estimate_plus_the_weighted_penalty():
    points = run_points(tiny_trainer(loss={"kind": "wgan-gp", "gp_weight": 3.0}, steps=3))
    for point in points:
        assert point.gradient_penalty > 0
        expected = -point.wasserstein_estimate + 3.0 * point.gradient_penalty
        assert point.critic_loss == pytest.approx(expected, rel=1e-5, abs=1e-7)


def test_same_seed_same_losses_other_seed_other_losses():
    first = [comparable(p) for p in run_points(tiny_trainer(seed=3))]
    again = [comparable(p) for p in run_points(tiny_trainer(seed=3))]
    other = [comparable(p) for p in run_points(tiny_trainer(seed=4))]
    assert first == again
    assert first != other


def test_initialisation_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    tiny_trainer()
    assert torch.equal(torch.rand(3), expected)


def test_refuses_an_unresolved_spec():
    from wgan.data.sources import open_builtin

    with pytest.raises(ValueError, match="resolve"):
        Trainer(tiny_spec(), open_builtin("8gaussians", torch.device("cpu")), torch.device("cpu"))


# --- divergence ------------------------------------------------------------------------------


class NaNAfter:
    """Real data that turns to NaN after `good` batches."""

    kind = "points"

    def __init__(self, inner, good: int) -> None:
        self.inner, self.good, self.device = inner, good, inner.device

    def sample(self, batch_size, generator):
        batch = self.inner.sample(batch_size, generator)
        self.good -= 1
        return batch if self.good >= 0 else torch.full_like(batch, float("nan"))

    def reference(self, n, seed):
        return self.inner.reference(n, seed)


@pytest.mark.parametrize("kind", ["wgan-gp", "wgan-clip", "vanilla"])
def test_nan_is_caught_with_a_clear_error_and_no_checkpoint_of_garbage(kind):
    trainer = tiny_trainer(loss={"kind": kind, "critic_schedule": "constant"}, n_critic=1, steps=20, log_every=4)
    # Two good steps, then NaN data from step 3 on: the error names the interval it happened in.
    trainer.data = NaNAfter(trainer.data, good=2)
    checkpoints, points = [], []
    with pytest.raises(TrainingDiverged, match=r"training diverged: critic_loss became nan between steps 1 and 4"):
        trainer.fit(Hooks(on_metrics=points.append, on_checkpoint=checkpoints.append))
    assert points == []
    assert checkpoints == []


def test_weights_blown_up_to_infinity_are_caught():
    trainer = tiny_trainer(loss={"kind": "wgan-gp"}, steps=20, log_every=5)
    # What a far too large learning rate ends in: weights at ±inf make every score non-finite.
    with torch.no_grad():
        for p in trainer.critic.parameters():
            p.mul_(1e38).mul_(1e38)
    with pytest.raises(TrainingDiverged, match=r"became (nan|inf|-inf) between steps 1 and 5"):
        trainer.fit()


# --- stopping and checkpoints --------------------------------------------------------------


def test_checkpoints_at_every_interval_and_at_the_end():
    steps = []
    trainer = tiny_trainer(steps=7, checkpoint_every=3, log_every=100)
    points = run_points(trainer, on_checkpoint=lambda c: steps.append(c.step))
    assert steps == [3, 6, 7]
    # A metric point is flushed at every checkpoint, so none straddles one.
    assert [p.step for p in points] == [3, 6, 7]


def test_stops_cooperatively_leaving_a_checkpoint():
    trainer = tiny_trainer(steps=50, checkpoint_every=1000)
    saved = []
    outcome = trainer.fit(Hooks(on_checkpoint=saved.append, should_stop=lambda: trainer.step >= 4))
    assert outcome == "stopped"
    assert trainer.step == 4
    assert [c.step for c in saved] == [4]


def test_evaluate_hook_runs_at_checkpoints_only():
    seen = []

    def evaluate(trainer):
        seen.append(trainer.step)
        return {"score": float(trainer.step)}

    points = run_points(tiny_trainer(steps=4, checkpoint_every=2, log_every=1), evaluate=evaluate)
    assert seen == [2, 4]
    assert {p.step: p.evaluation for p in points} == {1: {}, 2: {"score": 2.0}, 3: {}, 4: {"score": 4.0}}


def test_a_checkpoint_is_a_snapshot_not_a_view_of_live_state():
    trainer = tiny_trainer(steps=2)
    trainer.fit()
    checkpoint = trainer.checkpoint()
    frozen = {k: v.clone() for k, v in checkpoint.tensors.items()}
    trainer.spec = trainer.spec.model_copy(update={"steps": 4})
    trainer.fit()
    assert all(torch.equal(frozen[k], checkpoint.tensors[k]) for k in frozen)


# --- resuming ---------------------------------------------------------------------------------

RESUME_CASES = {
    "wgan-gp adam": {"loss": {"kind": "wgan-gp"}},
    # Checkpointed inside the 100-iteration warm-up: the resumed run must neither replay it nor skip it.
    "wgan-clip rmsprop paper schedule": {"loss": {"kind": "wgan-clip"}},
    "wgan-lp spectral norm": {"loss": {"kind": "wgan-lp"}, "model": {"spectral_norm": True}},
    "vanilla generator batch norm": {"loss": {"kind": "vanilla"}, "model": {"generator_batch_norm": True}},
}


@pytest.mark.parametrize("changes", RESUME_CASES.values(), ids=RESUME_CASES.keys())
def test_resume_from_disk_gives_bit_identical_next_steps(tmp_path, changes):
    steps, k = 6, 3
    uninterrupted = tiny_trainer(steps=steps, **changes)
    expected = run_points(uninterrupted)

    first = tiny_trainer(steps=steps, **changes)
    first.fit(Hooks(should_stop=lambda: first.step == k, on_checkpoint=lambda c: save_checkpoint(tmp_path, c)))
    assert first.step == k

    resumed = tiny_trainer(steps=steps, **changes)
    resumed.restore(load_checkpoint(tmp_path / f"step-{k:08d}.json"))
    assert resumed.step == k
    after = run_points(resumed)
    assert [comparable(p) for p in after] == [comparable(p) for p in expected[k:]]
    for name, value in uninterrupted.generator.state_dict().items():
        assert torch.equal(value, resumed.generator.state_dict()[name]), name
    for name, value in uninterrupted.critic.state_dict().items():
        assert torch.equal(value, resumed.critic.state_dict()[name]), name
    # The toys keep a moving average of the generator: it resumes too, bit for bit.
    assert uninterrupted.generator_ema is not None and resumed.generator_ema is not None
    for name, value in uninterrupted.generator_ema.state_dict().items():
        assert torch.equal(value, resumed.generator_ema.state_dict()[name]), name


def test_resume_of_an_image_model_with_a_higher_step_budget():
    spec_changes = {"loss": {"kind": "wgan-gp"}}
    expected = run_points(tiny_trainer(TINY_DIGITS, steps=4, **spec_changes))
    first = tiny_trainer(TINY_DIGITS, steps=2, **spec_changes)
    first.fit()
    checkpoint = first.checkpoint()
    # The step budget may grow on resume; the same in-memory checkpoint restores twice alike.
    for _ in range(2):
        resumed = tiny_trainer(TINY_DIGITS, steps=4, **spec_changes)
        resumed.restore(checkpoint)
        assert [comparable(p) for p in run_points(resumed)] == [comparable(p) for p in expected[2:]]


def test_a_channels_last_image_model_resumes_bit_for_bit(tmp_path):
    # A DCGAN on CUDA trains channels-last (Trainer); here on the CPU. Its optimizer state is stored
    # contiguous, and must come back in its weights' layout, or the fused step pairs the wrong elements.
    def channels_last(trainer: Trainer) -> Trainer:
        trainer.generator.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        trainer.critic.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        return trainer

    changes = {"loss": {"kind": "wgan-gp"}, "model": {"critic_norm": "none"}}
    expected = run_points(channels_last(tiny_trainer(TINY_DIGITS, steps=4, **changes)))
    first = channels_last(tiny_trainer(TINY_DIGITS, steps=4, **changes))
    first.fit(Hooks(should_stop=lambda: first.step == 2, on_checkpoint=lambda c: save_checkpoint(tmp_path, c)))
    resumed = channels_last(tiny_trainer(TINY_DIGITS, steps=4, **changes))
    resumed.restore(load_checkpoint(tmp_path / "step-00000002.json"))
    for param, state in resumed.opt_critic.state.items():
        assert state["exp_avg"].stride() == param.stride()
    assert [comparable(p) for p in run_points(resumed)] == [comparable(p) for p in expected[2:]]


def test_restore_refuses_a_checkpoint_of_another_spec():
    checkpoint = tiny_trainer(steps=2).checkpoint()
    with pytest.raises(CheckpointError, match=r"different spec \(loss differ\)"):
        tiny_trainer(steps=2, loss={"kind": "wgan-lp"}).restore(checkpoint)
    with pytest.raises(CheckpointError, match="seed"):
        tiny_trainer(steps=2, seed=1).restore(checkpoint)
    with pytest.raises(CheckpointError, match="model"):
        tiny_trainer(steps=2, model={"hidden_dim": 8}).restore(checkpoint)
    with pytest.raises(CheckpointError, match="batch_size"):
        tiny_trainer(steps=2, batch_size=16).restore(checkpoint)
    # What may change on resume: steps, logging and checkpoint cadence, device, evaluation, name.
    tiny_trainer(steps=9, log_every=5, checkpoint_every=3, name="renamed", evaluate=True).restore(checkpoint)


def test_restore_refuses_a_checkpoint_past_the_step_budget_or_missing_parts():
    trainer = tiny_trainer(steps=3)
    trainer.fit()
    checkpoint = trainer.checkpoint()
    with pytest.raises(CheckpointError, match="past this job's 2"):
        tiny_trainer(steps=2).restore(checkpoint)
    checkpoint.tensors = {k: v for k, v in checkpoint.tensors.items() if not k.startswith("critic.")}
    with pytest.raises(CheckpointError, match="does not fit"):
        tiny_trainer(steps=3).restore(checkpoint)


# --- options combine with every loss kind -----------------------------------------------------


@pytest.mark.parametrize("kind", ["wgan-clip", "wgan-gp", "wgan-lp", "vanilla"])
@pytest.mark.parametrize("base", ["points", "images"])
def test_spectral_norm_trains_with_each_loss_kind(kind, base):
    spec_base = TINY_DIGITS if base == "images" else None
    trainer = tiny_trainer(
        spec_base, steps=2, loss={"kind": kind, "critic_schedule": "constant"}, model={"spectral_norm": True}
    )
    before = [p.detach().clone() for p in trainer.critic.parameters()]
    points = run_points(trainer)
    assert [p.step for p in points] == [1, 2]
    assert all(math.isfinite(p.critic_loss) and math.isfinite(p.generator_loss) for p in points)
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.critic.parameters(), strict=True))


def test_assemble_builds_an_evaluator_for_every_kind_of_data_unless_asked_not_to():
    run = assemble(tiny_spec(evaluate=True), device=torch.device("cpu"))
    assert run.evaluator is not None and run.evaluator.n == 2000
    images = assemble(tiny_spec(TINY_DIGITS, evaluate=True), device=torch.device("cpu"), eval_examples=300)
    assert images.evaluator is not None and images.evaluator.n == 300
    assert assemble(tiny_spec(evaluate=False), device=torch.device("cpu")).evaluator is None


# --- the generator's moving average -----------------------------------------------------------


def test_the_moving_average_follows_each_generator_step_with_its_decay():
    decay = 0.75
    trainer = tiny_trainer(steps=1, generator_ema=decay)
    start = [p.detach().clone() for p in trainer.generator.parameters()]
    trainer.fit()
    assert trainer.generator_ema is not None and trainer.sampling_generator is trainer.generator_ema
    for before, live, average in zip(
        start, trainer.generator.parameters(), trainer.generator_ema.parameters(), strict=True
    ):
        assert not torch.equal(live, before)
        torch.testing.assert_close(average, decay * before + (1 - decay) * live)
    assert not any(p.requires_grad for p in trainer.generator_ema.parameters())


def test_no_average_when_turned_off_and_batch_norm_statistics_are_copied_not_averaged():
    plain = tiny_trainer(steps=1, generator_ema=0.0)
    plain.fit()
    assert plain.generator_ema is None and plain.sampling_generator is plain.generator
    assert not any(key.startswith("generator_ema.") for key in plain.checkpoint().tensors)

    normed = tiny_trainer(TINY_DIGITS, steps=2, generator_ema=0.9)
    normed.fit()
    averaged = normed.sampling_generator
    live_buffers = dict(normed.generator.named_buffers())
    assert live_buffers
    for name, buffer in averaged.named_buffers():
        assert torch.equal(buffer, live_buffers[name]), name
    assert any(key.startswith("generator_ema.") for key in normed.checkpoint().tensors)


def test_the_toys_keep_an_average_by_default_and_images_do_not():
    assert tiny_trainer().spec.generator_ema == 0.99
    assert tiny_trainer(TINY_DIGITS).spec.generator_ema == 0.0


@pytest.mark.parametrize(("size", "fit"), [(28, None), (32, "pad")])
def test_a_dcgan_trains_mnist_at_its_own_28_px_and_padded_to_32(size, fit):
    spec = {"dataset": {"name": "mnist", "fit": fit}, "model": {"image_size": size}}
    trainer = tiny_trainer(TINY_DIGITS, steps=2, **spec)
    assert (trainer.spec.model.image_size, trainer.spec.dataset.fit, trainer.spec.model.depth) == (size, fit, 3)
    points = run_points(trainer)
    assert len(points) == 2 and all(math.isfinite(p.critic_loss) for p in points)
    assert trainer.sampling_generator(trainer.noise(2)).shape == (2, 1, size, size)
