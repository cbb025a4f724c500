"""Cancelling and deleting jobs: running ones stop within seconds with a checkpoint; states are enforced."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.conftest import ROOT, TOY_SPEC, wait_for, wait_for_status

LONG = {**TOY_SPEC, "steps": 1_000_000, "checkpoint_every": 50}
# Routed to the GPU queue, which no test worker consumes: it stays queued.
PARKED = {**TOY_SPEC, "device": "cuda"}


def test_cancel_running_job_stops_within_seconds_and_keeps_a_checkpoint(client: httpx.Client, worker) -> None:
    job = client.post("/api/v1/jobs", json=LONG).json()
    wait_for(lambda: client.get(f"/api/v1/jobs/{job['id']}").json()["progress"]["step"] >= 20, 60, "training")
    asked = time.monotonic()
    response = client.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert response.status_code == 202
    assert response.json()["cancel_requested"] is True
    done = wait_for_status(client, job["id"], {"cancelled", "failed", "succeeded"}, timeout=30)
    assert done["status"] == "cancelled"
    assert time.monotonic() - asked < 10
    checkpoints = client.get(f"/api/v1/jobs/{job['id']}/checkpoints").json()["items"]
    assert checkpoints
    assert checkpoints[-1]["step"] == done["progress"]["step"]
    sample = client.get(f"/api/v1/jobs/{job['id']}/samples", params={"n": 4})
    assert sample.status_code == 200

    again = client.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"


def test_cancel_queued_job_is_immediate(client: httpx.Client) -> None:
    job = client.post("/api/v1/jobs", json=PARKED).json()
    response = client.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert response.status_code == 202
    assert response.json()["status"] == "cancelled"
    assert response.json()["finished_at"] is not None


def test_delete_removes_job_metrics_and_artifacts(client: httpx.Client, worker) -> None:
    job = client.post("/api/v1/jobs", json=TOY_SPEC).json()
    wait_for_status(client, job["id"], {"succeeded"})
    artifacts = ROOT / "artifacts" / "jobs" / job["id"]
    assert any(artifacts.rglob("*.safetensors"))
    assert client.delete(f"/api/v1/jobs/{job['id']}").status_code == 204
    assert client.get(f"/api/v1/jobs/{job['id']}").status_code == 404
    assert client.get(f"/api/v1/jobs/{job['id']}/metrics").status_code == 404
    assert not Path(artifacts).exists()
    assert client.delete(f"/api/v1/jobs/{job['id']}").status_code == 404


def test_delete_running_job_is_409(client: httpx.Client, worker) -> None:
    job = client.post("/api/v1/jobs", json=LONG).json()
    wait_for_status(client, job["id"], {"running"})
    response = client.delete(f"/api/v1/jobs/{job['id']}")
    assert response.status_code == 409
    assert client.post(f"/api/v1/jobs/{job['id']}/cancel").status_code == 202
    wait_for_status(client, job["id"], {"cancelled"}, timeout=30)
    assert client.delete(f"/api/v1/jobs/{job['id']}").status_code == 204


def test_samples_before_any_checkpoint_is_409(client: httpx.Client) -> None:
    job = client.post("/api/v1/jobs", json=PARKED).json()
    response = client.get(f"/api/v1/jobs/{job['id']}/samples")
    assert response.status_code == 409
    assert response.json()["status"] == 409
    client.post(f"/api/v1/jobs/{job['id']}/cancel")
