"""Experiments as data: grid expansion and its validation, overrides applied, results grouped and ranked."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service import experiments
from service.errors import InvalidInput
from service.models import Job
from service.states import JobState


def test_a_grid_expands_to_every_combination_in_order_the_last_axis_fastest() -> None:
    grid = {"loss.kind": ["vanilla", "wgan-gp"], "seed": [0, 1, 2]}
    runs = experiments.expand(grid, None, max_runs=6)
    assert runs == [{"loss.kind": kind, "seed": seed} for kind in ("vanilla", "wgan-gp") for seed in (0, 1, 2)]


@pytest.mark.parametrize(
    ("grid", "loc", "message"),
    [
        ({"loss.kinds": ["vanilla"]}, ["body", "grid", "loss.kinds"], "loss has no field 'kinds'"),
        ({"seed.value": [1]}, ["body", "grid", "seed.value"], "seed is a value"),
        ({"nonsense": [1]}, ["body", "grid", "nonsense"], "the spec has no field 'nonsense'"),
        ({"seed": []}, ["body", "grid", "seed"], "at least one value"),
        ({}, ["body", "grid"], "at least one axis"),
    ],
)
def test_a_bad_axis_is_refused_by_name(grid: dict, loc: list, message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        experiments.expand(grid, None, max_runs=10)
    (error,) = refused.value.errors
    assert error["loc"] == loc
    assert message in error["msg"]


def test_the_run_count_is_capped_before_expanding() -> None:
    # 10^8 combinations would exhaust memory if expanded first; the product is checked first.
    huge = {f"model.{name}": list(range(100)) for name in ("latent_dim", "hidden_dim", "depth", "image_size")}
    with pytest.raises(InvalidInput, match="too many runs") as refused:
        experiments.expand(huge, None, max_runs=64)
    assert "100000000 runs" in refused.value.errors[0]["msg"]
    assert len(experiments.expand({"seed": list(range(64))}, None, max_runs=64)) == 64


def test_listed_runs_are_checked_and_exactly_one_of_grid_and_runs_is_given() -> None:
    assert experiments.expand(None, [{"optimizer.lr": 0.001}, {}], max_runs=4) == [{"optimizer.lr": 0.001}, {}]
    with pytest.raises(InvalidInput) as refused:
        experiments.expand(None, [{"seed": 1}, {"optimiser.lr": 0.1}], max_runs=4)
    assert refused.value.errors[0]["loc"] == ["body", "runs", 1, "optimiser.lr"]
    for grid, runs in ((None, None), ({"seed": [1]}, [{"seed": 1}])):
        with pytest.raises(InvalidInput, match="a grid or a list"):
            experiments.expand(grid, runs, max_runs=4)


def test_overrides_set_nested_fields_and_leave_the_base_alone() -> None:
    base = {"dataset": {"name": "8gaussians"}, "loss": {"kind": "wgan-gp", "gp_weight": 0.1}}
    spec = experiments.apply(base, {"loss.kind": "vanilla", "optimizer.lr": 0.001, "seed": 2})
    assert spec == {
        "dataset": {"name": "8gaussians"},
        "loss": {"kind": "vanilla", "gp_weight": 0.1},
        "optimizer": {"lr": 0.001},
        "seed": 2,
    }
    assert base["loss"]["kind"] == "wgan-gp"


def _run(overrides: dict, final: float | None, best: float | None, state: JobState = JobState.SUCCEEDED) -> Job:
    summary = None
    if final is not None:
        summary = {"primary": "exact_w1", "newest": {"value": final}, "best": {"value": best}}
    return Job(
        id=f"job-{len(str(overrides))}-{final}",
        overrides=overrides,
        summary=summary,
        status=state,
        created_at=datetime.now(UTC),
    )


def test_runs_that_differ_only_in_seed_are_grouped_with_mean_and_sd() -> None:
    runs = [
        _run({"loss.kind": "vanilla", "seed": 0}, 0.5, 0.4),
        _run({"loss.kind": "vanilla", "seed": 1}, 0.7, 0.6),
        _run({"loss.kind": "wgan-gp", "seed": 0}, 0.1, 0.08),
        _run({"loss.kind": "wgan-gp", "seed": 1}, None, None, JobState.RUNNING),
    ]
    groups = experiments.groups([experiments.run_result(job) for job in runs])
    assert [group.point for group in groups] == [{"loss.kind": "vanilla"}, {"loss.kind": "wgan-gp"}]
    vanilla, gp = groups
    assert vanilla.final.mean == pytest.approx(0.6)
    assert vanilla.final.sd == pytest.approx(0.1414, abs=1e-4)  # the sample sd of 0.5 and 0.7
    assert (vanilla.final.n, gp.final.n, gp.final.sd) == (2, 1, None)


def test_ranking_puts_runs_without_a_value_last_either_way() -> None:
    results = [experiments.run_result(job) for job in (_run({"seed": 0}, 0.3, 0.2), _run({"seed": 1}, None, None))]
    results.append(experiments.run_result(_run({"seed": 2}, 0.1, 0.05)))
    assert [r.best for r in experiments.ranked(results, "best")] == [0.05, 0.2, None]
    assert [r.best for r in experiments.ranked(results, "-best")] == [0.2, 0.05, None]
    with pytest.raises(InvalidInput, match="bad sort"):
        experiments.ranked(results, "loss")
