"""A job's summary: newest and best by its primary measure, Spearman once three checkpoints have it."""

from __future__ import annotations

import pytest

from service.summary import add_checkpoint, primary_measure, public
from wgan.config import TrainSpec


def _add(summary, step, estimate, w1):
    measures = None if w1 is None else {"exact_w1": w1}
    return add_checkpoint(
        summary, "exact_w1", step=step, checkpoint_id=f"c{step}", estimate=estimate, measures=measures
    )


def test_newest_best_and_spearman_follow_the_checkpoints() -> None:
    summary = _add(None, 100, 2.0, 0.9)
    summary = _add(summary, 200, 1.0, 0.4)
    assert summary["spearman"] is None  # two points define no rank correlation worth showing
    summary = _add(summary, 300, 0.5, 0.3)
    assert summary["newest"] == {"step": 300, "checkpoint_id": "c300", "value": 0.3}
    assert summary["best"] == {"step": 300, "checkpoint_id": "c300", "value": 0.3}
    assert summary["spearman"] == pytest.approx(1.0)  # the estimate falls exactly as W1 does
    summary = _add(summary, 400, 0.4, 0.35)  # worse than the best: the best stays
    assert summary["best"]["step"] == 300 and summary["newest"]["step"] == 400
    assert (summary["checkpoints"], summary["evaluated"]) == (4, 4)


def test_a_failed_evaluation_counts_as_a_checkpoint_not_a_measure_and_a_resumed_step_replaces_its_entry() -> None:
    summary = _add(_add(None, 100, 2.0, 0.9), 200, 1.0, None)
    assert (summary["checkpoints"], summary["evaluated"]) == (2, 1)
    assert summary["newest"]["step"] == 100
    again = _add(summary, 200, 1.1, 0.5)  # step 200 checkpointed again after a resume
    assert (again["checkpoints"], again["evaluated"]) == (2, 2)
    assert again["best"] == {"step": 200, "checkpoint_id": "c200", "value": 0.5}
    assert "series" not in public(again) and public(None) is None


def test_digits_and_mnist_are_ranked_by_the_classifier_and_everything_else_by_w1() -> None:
    def spec(dataset: dict) -> TrainSpec:
        return TrainSpec.model_validate({"dataset": dataset})

    assert primary_measure(spec({"name": "mnist"})) == primary_measure(spec({"name": "digits"})) == "frechet"
    assert primary_measure(spec({"name": "8gaussians"})) == primary_measure(spec({"id": "u"})) == "exact_w1"
