"""Duration estimates: from jobs of the same cost, a line through other sizes, one size scaled, or assumed."""

from __future__ import annotations

import pytest

from service.estimates import SpeedModel, estimate_from
from wgan.config import TrainSpec, resolve
from wgan.cost import StepCost, step_cost

GFLOP = 1e9
ASSUMED = SpeedModel(update_seconds=0.001, flops_per_second=100 * GFLOP)


def cost(gflops: float, updates: int = 6) -> StepCost:
    return StepCost(generator_params=1, critic_params=1, flops_per_step=gflops * GFLOP, updates_per_step=updates)


def test_jobs_of_the_same_cost_give_their_median() -> None:
    measured = [(cost(2), 0.030), (cost(2), 0.050), (cost(2), 0.040), (cost(9), 1.0), (cost(2, updates=3), 9.0)]
    made = estimate_from(measured, cost(2), steps=1000, model=ASSUMED)
    assert (made.basis, made.jobs) == ("measured", 3)
    assert made.seconds_per_step == pytest.approx(0.040)
    assert made.seconds == pytest.approx(40.0)


def test_nothing_measured_is_the_assumed_cost_of_updates_and_arithmetic() -> None:
    made = estimate_from([], cost(5, updates=6), steps=10, model=ASSUMED)
    assert (made.basis, made.jobs) == ("assumed", 0)
    assert made.seconds_per_step == pytest.approx(6 * 0.001 + 5 / 100)


def test_jobs_of_other_costs_calibrate_the_assumption_by_how_fast_they_ran() -> None:
    # This machine runs three times slower than assumed: every measured job says so, whatever its size.
    measured = [(other, 3 * ASSUMED.seconds_per_step(other)) for other in (cost(1), cost(40, updates=11))]
    made = estimate_from(measured, cost(8), steps=100, model=ASSUMED)
    assert (made.basis, made.jobs) == ("calibrated", 2)
    assert made.seconds_per_step == pytest.approx(3 * ASSUMED.seconds_per_step(cost(8)))


def test_the_step_cost_grows_with_width_batch_critic_steps_and_the_penalty() -> None:
    def flops(**overrides: object) -> float:
        raw = {"dataset": {"name": "8gaussians"}, "model": {"hidden_dim": 64}, **overrides}
        return step_cost(resolve(TrainSpec.model_validate(raw), "points", (2,))).flops_per_step

    base = flops()
    assert flops(batch_size=512) == pytest.approx(2 * base)
    assert flops(model={"hidden_dim": 128}) > 3 * base  # the hidden matmuls grow with the square of the width
    assert flops(n_critic=10) > 1.8 * base
    assert flops(loss={"kind": "wgan-clip"}, n_critic=5) < base  # no penalty: fewer passes per critic step
