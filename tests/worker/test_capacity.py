"""The per-owner cap on running jobs: extra jobs wait queued and start when capacity frees."""

from __future__ import annotations

import time

from tests.faults.conftest import FAULT_SPEC

LONG = {**FAULT_SPEC, "steps": 100_000, "checkpoint_every": 1000}


def test_an_owner_over_the_cap_waits_while_others_train(make_stack) -> None:
    stack = make_stack(max_running_per_owner="1")
    stack.api()
    stack.worker("a")
    stack.worker("b")
    alice, bob = stack.client(), stack.client()
    first = alice.post("/api/v1/jobs", json=LONG).json()["id"]
    second = alice.post("/api/v1/jobs", json=LONG).json()["id"]
    stack.wait_job(first, lambda j: j["status"] == "running", 60, "alice's first job to run")
    # Alice's second job waits although a worker is free; Bob's job takes that worker.
    theirs = bob.post("/api/v1/jobs", json=LONG).json()["id"]
    stack.wait_job(theirs, lambda j: j["status"] == "running", 60, "bob's job to run")
    time.sleep(2)
    # Held back with no task in the broker: its own state in the database, "queued" to its owner.
    assert (stack.job(second)["status"], stack.job(second)["enqueued_at"]) == ("waiting", None)
    assert alice.get(f"/api/v1/jobs/{second}").json()["status"] == "queued"
    assert [job["id"] for job in alice.get("/api/v1/jobs", params={"status": "queued"}).json()["items"]] == [second]
    statuses = [
        event["status"]
        for event in stack.rows_json(
            "SELECT data FROM events WHERE job_id = :id AND type = 'status' ORDER BY seq", id=second
        )
    ]
    assert statuses == ["queued"], "waiting is no change a client sees"
    # When Alice's first job ends, her second one starts on the freed worker.
    assert bob.post(f"/api/v1/jobs/{theirs}/cancel").status_code == 202
    assert alice.post(f"/api/v1/jobs/{first}/cancel").status_code == 202
    stack.wait_job(second, lambda j: j["status"] == "running", 60, "alice's second job to start")
    alice.post(f"/api/v1/jobs/{second}/cancel")
    stack.wait_job(second, lambda j: j["status"] == "cancelled", 30, "the cancel")
    alice.close()
    bob.close()
