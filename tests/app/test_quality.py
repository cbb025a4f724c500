"""Every job is measured at every checkpoint: measures on metric points, checkpoints and events, a summary
with the best checkpoint and how the critic tracks quality, and samples from the best checkpoint."""

from __future__ import annotations

import math

import httpx
import pytest

from tests.conftest import TOY_SPEC, wait_for_status
from tests.support.sse import read_events

MIXTURE_MEASURES = {"exact_w1", "modes_covered", "modes_well_covered", "modes_total", "high_quality"}


def test_a_toy_job_is_measured_at_each_checkpoint_and_summarised(client: httpx.Client, worker: object) -> None:
    job = client.post("/api/v1/jobs", json=TOY_SPEC).json()
    done = wait_for_status(client, job["id"], {"succeeded", "failed"})
    assert done["status"] == "succeeded", done["error"]

    checkpoints = client.get(f"/api/v1/jobs/{job['id']}/checkpoints").json()["items"]
    assert [c["step"] for c in checkpoints] == [20, 40, 60]
    for checkpoint in checkpoints:
        assert set(checkpoint["measures"]) == MIXTURE_MEASURES
        assert checkpoint["measures"]["modes_total"] == 8 and checkpoint["evaluation_error"] is None
    points = {p["step"]: p for p in client.get(f"/api/v1/jobs/{job['id']}/metrics").json()["items"]}
    for checkpoint in checkpoints:
        point = points[checkpoint["step"]]
        assert point["measures"] == checkpoint["measures"]
        assert point["exact_w1"] == point["measures"]["exact_w1"]
        assert point["modes_covered"] == point["measures"]["modes_covered"]
    assert points[5]["measures"] is None and points[5]["exact_w1"] is None  # measured at checkpoints only

    # The stream's checkpoint events carry the same record as the REST list.
    events = read_events(client, f"/api/v1/jobs/{job['id']}/events")
    assert [e.data for e in events if e.event == "checkpoint"] == checkpoints

    summary = client.get(f"/api/v1/jobs/{job['id']}").json()["summary"]
    values = {c["step"]: c["measures"]["exact_w1"] for c in checkpoints}
    best_step = min(values, key=values.__getitem__)
    assert summary["primary"] == "exact_w1"
    assert (summary["checkpoints"], summary["evaluated"]) == (3, 3)
    assert summary["newest"] == {"step": 60, "checkpoint_id": checkpoints[-1]["id"], "value": values[60]}
    best = next(c for c in checkpoints if c["step"] == best_step)
    assert summary["best"] == {"step": best_step, "checkpoint_id": best["id"], "value": values[best_step]}
    assert summary["spearman"] is not None and -1 <= summary["spearman"] <= 1

    from_best = client.get(f"/api/v1/jobs/{job['id']}/samples", params={"checkpoint": "best", "n": 16})
    assert from_best.status_code == 200
    assert from_best.headers["x-checkpoint-step"] == str(best_step)
    assert from_best.headers["cache-control"] == "private, no-cache"  # 'best' can move while a job trains
    by_id = client.get(f"/api/v1/jobs/{job['id']}/samples", params={"checkpoint": best["id"], "n": 16})
    assert from_best.content == by_id.content


def test_best_is_a_conflict_until_a_checkpoint_is_evaluated(client: httpx.Client) -> None:
    parked = client.post("/api/v1/jobs", json={**TOY_SPEC, "device": "cuda"}).json()
    assert parked["summary"] is None
    response = client.get(f"/api/v1/jobs/{parked['id']}/samples", params={"checkpoint": "best"})
    assert response.status_code == 409
    assert "evaluated checkpoint" in response.json()["detail"]
    client.post(f"/api/v1/jobs/{parked['id']}/cancel")


def test_a_digits_job_is_measured_in_data_space_and_judged_by_a_classifier(
    client: httpx.Client, worker: object
) -> None:
    spec = {
        "dataset": {"name": "digits"},
        "model": {"arch": "dcgan", "hidden_dim": 4, "latent_dim": 8, "image_size": 16},
        "batch_size": 8,
        "steps": 4,
        "checkpoint_every": 2,
        "log_every": 2,
    }
    job = client.post("/api/v1/jobs", json=spec).json()
    done = wait_for_status(client, job["id"], {"succeeded", "failed"})
    assert done["status"] == "succeeded", done["error"]
    checkpoints = client.get(f"/api/v1/jobs/{job['id']}/checkpoints").json()["items"]
    assert [c["step"] for c in checkpoints] == [2, 4]
    for checkpoint in checkpoints:
        # An untrained generator is far from the digits: each image is 256 values in [−1, 1].
        measures = checkpoint["measures"]
        assert 1.0 < measures["exact_w1"] < 2 * 16
        assert "modes_covered" not in measures
        # Untrained samples are far from real digits; real ones through the same pipeline are near the floor.
        assert 1 <= measures["classes_covered"] <= 10 and 0 <= measures["class_kl"] <= math.log(10) + 1e-9
        assert measures["frechet"] > 5 * measures["frechet_real"] > 0
    summary = client.get(f"/api/v1/jobs/{job['id']}").json()["summary"]
    assert summary["primary"] == "frechet"
    assert summary["best"]["value"] == min(c["measures"]["frechet"] for c in checkpoints)


@pytest.mark.slow
def test_a_job_whose_evaluation_fails_succeeds_and_says_why(make_stack) -> None:
    stack = make_stack(fault="evaluation-error@40")
    stack.api()
    stack.worker()
    with stack.client() as client:
        job = client.post("/api/v1/jobs", json=TOY_SPEC).json()
        done = wait_for_status(client, job["id"], {"succeeded", "failed"}, timeout=120)
        assert done["status"] == "succeeded", done["error"]
        checkpoints = {c["step"]: c for c in client.get(f"/api/v1/jobs/{job['id']}/checkpoints").json()["items"]}
        assert sorted(checkpoints) == [20, 40, 60]
        assert checkpoints[40]["measures"] is None
        assert checkpoints[40]["evaluation_error"] == "RuntimeError: injected evaluation failure at step 40"
        assert checkpoints[20]["measures"] and checkpoints[60]["measures"]
        summary = done["summary"]
        assert (summary["checkpoints"], summary["evaluated"]) == (3, 2)
        assert summary["best"]["step"] in {20, 60}
