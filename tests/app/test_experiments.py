"""An experiment's life over HTTP against the real stack: create → its runs train → the results table
ranks and groups them → its one event stream resumes exactly → cancel → delete; and its errors."""

from __future__ import annotations

import time

import httpx

from tests.conftest import TOY_SPEC, wait_for
from tests.support.sse import read_events

GRID = {"loss.kind": ["wgan-gp", "vanilla"], "seed": [0, 1]}
PARKED = {**TOY_SPEC, "device": "cuda"}  # on the gpu queue, which no test worker serves


def _finished(client: httpx.Client, experiment_id: str, timeout: float = 120) -> dict:
    def check() -> dict | None:
        body = client.get(f"/api/v1/experiments/{experiment_id}").json()
        return body if body["finished"] else None

    return wait_for(check, timeout, f"experiment {experiment_id} to finish", interval=0.5)


def test_an_experiment_trains_its_grid_and_ranks_and_groups_the_runs(client: httpx.Client, worker) -> None:
    created = client.post("/api/v1/experiments", json={"name": "loss comparison", "base": TOY_SPEC, "grid": GRID})
    assert created.status_code == 202, created.text
    experiment = created.json()
    assert created.headers["location"] == f"/api/v1/experiments/{experiment['id']}"
    assert [run["overrides"] for run in experiment["runs"]] == [
        {"loss.kind": kind, "seed": seed} for kind in ("wgan-gp", "vanilla") for seed in (0, 1)
    ]
    # Each run is an ordinary job, listed with the others, its spec the base with its overrides.
    job = client.get(f"/api/v1/jobs/{experiment['runs'][3]['job_id']}").json()
    assert job["experiment_id"] == experiment["id"]
    assert (job["spec"]["loss"]["kind"], job["spec"]["seed"]) == ("vanilla", 1)
    assert job["name"] == "loss comparison · loss.kind=vanilla, seed=1"
    listed = {item["id"] for item in client.get("/api/v1/jobs").json()["items"]}
    assert {run["job_id"] for run in experiment["runs"]} <= listed

    done = _finished(client, experiment["id"])
    assert done["counts"] == {"succeeded": 4}
    assert done["progress"] == {"step": 4 * TOY_SPEC["steps"], "total_steps": 4 * TOY_SPEC["steps"]}
    assert done["primary"] == "exact_w1"
    assert [group["point"] for group in done["groups"]] == [{"loss.kind": "wgan-gp"}, {"loss.kind": "vanilla"}]
    for group in done["groups"]:
        assert group["best"]["n"] == 2 and group["best"]["sd"] is not None
        values = [run["best"] for run in done["runs"] if run["job_id"] in group["runs"]]
        assert group["best"]["mean"] == sum(values) / 2
    ranked = client.get(f"/api/v1/experiments/{experiment['id']}", params={"sort": "best"}).json()
    best = [run["best"] for run in ranked["runs"]]
    assert best == sorted(best)
    worst_first = client.get(f"/api/v1/experiments/{experiment['id']}", params={"sort": "-best"}).json()
    assert [run["best"] for run in worst_first["runs"]] == sorted(best, reverse=True)
    assert client.get(f"/api/v1/experiments/{experiment['id']}", params={"sort": "loss"}).status_code == 422
    assert experiment["id"] in {item["id"] for item in client.get("/api/v1/experiments").json()["items"]}

    # One stream for all runs: each run's statuses and checkpoints, then `finished`; resuming is exact.
    path = f"/api/v1/experiments/{experiment['id']}/events"
    events = read_events(client, path, timeout=30)
    assert [int(event.id) for event in events] == list(range(1, len(events) + 1))
    assert events[-1].event == "finished" and events[-1].data == {"counts": {"succeeded": 4}}
    for run in experiment["runs"]:
        statuses = [e.data["status"] for e in events if e.event == "run-status" and e.data["job_id"] == run["job_id"]]
        assert statuses == ["queued", "running", "succeeded"]
        checkpoints = [e for e in events if e.event == "run-checkpoint" and e.data["job_id"] == run["job_id"]]
        assert [e.data["checkpoint"]["step"] for e in checkpoints] == [20, 40, 60]
        assert checkpoints[-1].data["summary"]["checkpoints"] == 3
    middle = events[len(events) // 2]
    resumed = read_events(client, path, last_event_id=middle.id, timeout=30)
    assert [(e.id, e.event, e.data) for e in resumed] == [(e.id, e.event, e.data) for e in events[int(middle.id) :]]
    assert client.get(path, headers={"Last-Event-ID": events[-1].id}).status_code == 204

    assert client.post(f"/api/v1/experiments/{experiment['id']}/cancel").status_code == 409
    assert client.delete(f"/api/v1/experiments/{experiment['id']}").status_code == 204
    assert client.get(f"/api/v1/experiments/{experiment['id']}").status_code == 404
    assert client.get(f"/api/v1/jobs/{experiment['runs'][0]['job_id']}").status_code == 404


def test_bad_paths_values_and_sizes_are_422s_naming_the_run_and_field(client: httpx.Client) -> None:
    def refused(body: dict) -> list:
        response = client.post("/api/v1/experiments", json={"name": "bad", "base": PARKED, **body})
        assert response.status_code == 422, response.text
        return [error["loc"] for error in response.json()["errors"]]

    assert refused({"grid": {"loss.kinds": ["vanilla"]}}) == [["body", "grid", "loss.kinds"]]
    assert refused({"grid": {"loss.kind": ["wgan-gp", "adversarial"]}}) == [["body", "runs", 1, "loss", "kind"]]
    assert refused({"runs": [{"seed": 1}, {"model.hidden_dim": 0}]}) == [["body", "runs", 1, "model", "hidden_dim"]]
    assert refused({"grid": {"seed": list(range(65))}}) == [["body", "grid"]]
    assert refused({"grid": {"seed": [1]}, "runs": [{"seed": 1}]}) == [["body"]]
    assert client.get("/api/v1/jobs").json()["items"] == [], "nothing was queued"


def test_cancel_stops_every_run_and_delete_waits_for_them(client: httpx.Client, other_client: httpx.Client) -> None:
    body = {"name": "parked", "base": PARKED, "runs": [{"seed": 0}, {"seed": 1}]}
    headers = {"Idempotency-Key": f"exp-{time.monotonic_ns()}"}
    experiment = client.post("/api/v1/experiments", json=body, headers=headers).json()
    again = client.post("/api/v1/experiments", json=body, headers=headers)
    assert (again.status_code, again.json()["id"]) == (202, experiment["id"]), "the same key: the same experiment"
    assert len(client.get("/api/v1/jobs").json()["items"]) == 2
    # Another owner sees none of it.
    assert other_client.get(f"/api/v1/experiments/{experiment['id']}").status_code == 404
    assert other_client.post(f"/api/v1/experiments/{experiment['id']}/cancel").status_code == 404
    assert other_client.get(f"/api/v1/experiments/{experiment['id']}/events").status_code == 404
    assert experiment["id"] not in {item["id"] for item in other_client.get("/api/v1/experiments").json()["items"]}

    assert client.delete(f"/api/v1/experiments/{experiment['id']}").status_code == 409
    cancelled = client.post(f"/api/v1/experiments/{experiment['id']}/cancel")
    assert cancelled.status_code == 202
    assert cancelled.json()["counts"] == {"cancelled": 2} and cancelled.json()["finished"]
    events = read_events(client, f"/api/v1/experiments/{experiment['id']}/events", timeout=30)
    assert [e.event for e in events] == ["run-status", "run-status", "run-status", "run-status", "finished"]
    assert client.delete(f"/api/v1/experiments/{experiment['id']}").status_code == 204
    assert client.get("/api/v1/jobs").json()["items"] == []
