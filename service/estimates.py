"""How long a job will train, before it is submitted: from the speeds this deployment's jobs measured.

On a given worker a step costs about `updates × a + flops / b`: each optimizer update has a fixed
cost (kernel launches, Python; it dominates small models) and the arithmetic the rest. `a` and `b`
start as assumptions from the settings; jobs that have trained here then correct them:
- "measured": the median speed of recent jobs of the same cost on the same queue;
- "calibrated": the assumed model scaled by how fast recent jobs of other costs ran against it
  (the median ratio), so one measured job already corrects a wrong guess of the machine's speed;
- "assumed": nothing has trained on the queue yet.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Literal

from pydantic import ValidationError
from sqlalchemy.orm import Session

from service.repositories import jobs as job_repo
from service.settings import Settings
from wgan.config import TrainSpec, is_resolved
from wgan.cost import StepCost, step_cost

Basis = Literal["measured", "calibrated", "assumed"]
RECENT_JOBS = 200
# Two costs this close count as the same (equal specs give equal counts; this absorbs rounding).
SAME_COST = 1e-6


@dataclass(frozen=True)
class Estimate:
    seconds_per_step: float
    seconds: float
    basis: Basis
    jobs: int  # how many measured jobs it rests on


@dataclass(frozen=True)
class SpeedModel:
    """The assumed cost of a step before any job corrects it."""

    update_seconds: float
    flops_per_second: float

    def seconds_per_step(self, cost: StepCost) -> float:
        return cost.updates_per_step * self.update_seconds + cost.flops_per_step / self.flops_per_second


def _measured(session: Session, queue: str) -> list[tuple[StepCost, float]]:
    """(cost, seconds per step) of recent jobs on `queue`."""
    points = []
    for raw, seconds in job_repo.recent_speeds(session, queue, RECENT_JOBS):
        try:
            spec = TrainSpec.model_validate(raw)
        except ValidationError:
            continue  # a spec stored by an older version that no longer validates says nothing now
        if is_resolved(spec):
            points.append((step_cost(spec), seconds))
    return points


def estimate(session: Session, spec: TrainSpec, queue: str, cost: StepCost, settings: Settings) -> Estimate:
    """The training time of a resolved spec on `queue`, with what it rests on."""
    model = SpeedModel(settings.estimate_update_seconds, settings.estimate_flops_per_second)
    return estimate_from(_measured(session, queue), cost, spec.steps, model)


def _same(a: StepCost, b: StepCost) -> bool:
    close = abs(a.flops_per_step - b.flops_per_step) <= SAME_COST * max(a.flops_per_step, 1.0)
    return close and a.updates_per_step == b.updates_per_step


def estimate_from(measured: list[tuple[StepCost, float]], cost: StepCost, steps: int, model: SpeedModel) -> Estimate:
    """The estimate for `steps` steps of `cost`, from measured (cost, seconds per step) pairs."""
    basis: Basis
    same = [seconds for other, seconds in measured if _same(other, cost)]
    if same:
        per_step, basis, jobs = statistics.median(same), "measured", len(same)
    elif measured:
        ratio = statistics.median(seconds / model.seconds_per_step(other) for other, seconds in measured)
        per_step, basis, jobs = ratio * model.seconds_per_step(cost), "calibrated", len(measured)
    else:
        per_step, basis, jobs = model.seconds_per_step(cost), "assumed", 0
    return Estimate(seconds_per_step=per_step, seconds=per_step * steps, basis=basis, jobs=jobs)
