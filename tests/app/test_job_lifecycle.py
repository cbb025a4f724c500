"""The whole life of a toy job through the real API, worker, Postgres and Redis."""

from __future__ import annotations

import io
import json

import httpx
import numpy as np
from PIL import Image

from tests.conftest import TOY_SPEC, wait_for_status


def test_toy_job_trains_to_success_with_metrics_checkpoints_and_samples(client: httpx.Client, worker) -> None:
    response = client.post("/api/v1/jobs", json=TOY_SPEC)
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/api/v1/jobs/{job['id']}"
    assert job["status"] == "queued"
    # Every default is filled in and shown: on a 2-D toy, the toy settings.
    assert job["spec"]["loss"] == {
        "kind": "wgan-gp",
        "gp_weight": 0.1,
        "clip_value": 0.01,
        "critic_schedule": "constant",
    }
    assert job["spec"]["optimizer"] == {"kind": "adam", "lr": 1e-3, "betas": [0.5, 0.9]}
    assert job["spec"]["generator_ema"] == 0.99
    assert job["progress"] == {"step": 0, "total_steps": 60}

    done = wait_for_status(client, job["id"], {"succeeded", "failed"})
    assert done["status"] == "succeeded", done["error"]
    assert done["progress"]["step"] == 60
    assert done["started_at"]
    assert done["finished_at"]
    assert done["latest_metrics"]["step"] == 60

    metrics = client.get(f"/api/v1/jobs/{job['id']}/metrics").json()
    assert [point["step"] for point in metrics["items"]] == list(range(5, 61, 5))
    assert metrics["next_after_step"] is None
    at_checkpoints = {p["step"]: p["exact_w1"] for p in metrics["items"] if p["exact_w1"] is not None}
    assert sorted(at_checkpoints) == [20, 40, 60]  # the exact W1 is measured at each checkpoint

    checkpoints = client.get(f"/api/v1/jobs/{job['id']}/checkpoints").json()["items"]
    assert [c["step"] for c in checkpoints] == [20, 40, 60]

    png = client.get(f"/api/v1/jobs/{job['id']}/samples", params={"n": 100, "seed": 3})
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(png.content))
    image.load()
    assert image.size[0] > 100
    again = client.get(f"/api/v1/jobs/{job['id']}/samples", params={"n": 100, "seed": 3})
    assert again.content == png.content
    assert again.headers["etag"] == png.headers["etag"]
    other_seed = client.get(f"/api/v1/jobs/{job['id']}/samples", params={"n": 100, "seed": 4})
    assert other_seed.content != png.content
    cached = client.get(
        f"/api/v1/jobs/{job['id']}/samples",
        params={"n": 100, "seed": 3},
        headers={"If-None-Match": png.headers["etag"]},
    )
    assert cached.status_code == 304

    points = client.get(f"/api/v1/jobs/{job['id']}/samples", params={"n": 5, "format": "json"}).json()
    assert points["checkpoint"]["step"] == 60
    assert points["seed"] == 0
    assert len(points["samples"]) == 5
    assert all(len(p) == 2 for p in points["samples"])
    raw = client.get(f"/api/v1/jobs/{job['id']}/samples", params={"n": 5, "format": "npy"})
    array = np.load(io.BytesIO(raw.content), allow_pickle=False)
    assert array.shape == (5, 2)
    assert array.dtype == np.float32
    np.testing.assert_array_equal(array, np.asarray(points["samples"], dtype=np.float32))
    early = client.get(f"/api/v1/jobs/{job['id']}/samples", params={"n": 5, "format": "json", "checkpoint": "20"})
    assert early.json()["checkpoint"]["step"] == 20
    assert early.json()["samples"] != points["samples"]
    first_id = client.get(f"/api/v1/jobs/{job['id']}/checkpoints").json()["items"][0]["id"]
    by_id = client.get(f"/api/v1/jobs/{job['id']}/samples", params={"n": 5, "format": "json", "checkpoint": first_id})
    assert by_id.json()["checkpoint"] == {"id": first_id, "step": 20}
    assert by_id.json()["samples"] == early.json()["samples"]
    for missing in ("30", "not-a-checkpoint"):
        absent = client.get(f"/api/v1/jobs/{job['id']}/samples", params={"checkpoint": missing})
        assert absent.status_code == 404
        assert missing in absent.json()["detail"]
    assert json.loads(client.get(f"/api/v1/jobs/{job['id']}").text)["status"] == "succeeded"


def test_a_fresh_api_answers_its_first_submission_within_a_short_idle_in_transaction_limit(make_stack) -> None:
    # A submission costs its spec inside its transaction; the first FLOP count of a process takes seconds
    # (wgan.cost.warm), which the API now spends at start. A second idle inside a transaction is far
    # less than that first count takes, and far more than a warm submission leaves its transaction idle.
    stack = make_stack(db_idle_in_transaction_seconds="1")
    stack.api()
    with stack.client() as client:
        for spec in ({**TOY_SPEC, "device": "cuda"}, {"dataset": {"name": "digits"}, "device": "cuda"}):
            response = client.post("/api/v1/jobs", json=spec)
            assert response.status_code == 202, response.text
