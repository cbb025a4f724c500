"""Several worker processes: jobs spread over them, one trainer per job, a dead worker's job moves on."""

from __future__ import annotations

import json
import time

from tests.faults.conftest import FAULT_SPEC


def test_jobs_spread_over_workers_and_a_dead_workers_job_moves_to_another(make_stack) -> None:
    stack = make_stack(log_json="true")
    stack.api()
    workers = [stack.worker(f"w{i}") for i in range(3)]
    owners = [stack.client() for _ in range(2)]  # two owners: the per-owner cap does not bind
    jobs = [owners[i % 2].post("/api/v1/jobs", json={**FAULT_SPEC, "steps": 400}).json()["id"] for i in range(4)]
    running = {}
    deadline = time.monotonic() + 60
    while len(running) < 3 and time.monotonic() < deadline:
        for job_id in jobs:
            row = stack.job(job_id)
            if row["status"] == "running" and row["claimed_by"]:
                running[job_id] = row["claimed_by"]
        time.sleep(0.1)
    # Three workers, three jobs at once, each on its own worker.
    assert len(set(running.values())) == 3
    victim_job, victim_claim = next(iter(running.items()))
    victim = next(w for w in workers if f":{w.pid}:" in victim_claim)
    victim.kill()
    for job_id in jobs:
        done = stack.wait_job(job_id, lambda j: j["status"] in {"succeeded", "failed"}, 180, "all jobs to end")
        assert done["status"] == "succeeded", done["error"]
        assert stack.metric_steps(job_id) == list(range(5, 401, 5))
        expected_attempts = 2 if job_id == victim_job else 1
        assert done["attempts"] == expected_attempts, job_id
    assert f":{victim.pid}:" not in (stack.job(victim_job)["claimed_by"] or "")
    # Every line a worker logs about training is JSON and carries the job's id.
    survivor = next(w for w in workers if w is not victim)
    lines = [json.loads(line) for line in survivor.log().splitlines() if line.startswith("{")]
    training = [line for line in lines if line["logger"] in {"worker.training", "worker.recording", "worker.monitor"}]
    assert training
    assert all(line.get("job_id") in jobs for line in training)
    for client in owners:
        client.close()
