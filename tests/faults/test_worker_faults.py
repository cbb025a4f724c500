"""Workers that die, freeze, get a task twice or are asked to stop: nothing is lost or done twice."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from service.queue import TRAIN_TASK
from tests.faults.conftest import FAULT_SPEC
from tests.support.isolated import Stack

ALL_STEPS = list(range(5, 301, 5))


def _submit(stack: Stack, spec: dict | None = None) -> str:
    with stack.client() as client:
        response = client.post("/api/v1/jobs", json=spec or FAULT_SPEC)
        assert response.status_code == 202, response.text
        return str(response.json()["id"])


def _finished(stack: Stack, job_id: str, timeout: float = 120) -> dict:
    return stack.wait_job(job_id, lambda j: j["status"] in {"succeeded", "failed", "cancelled"}, timeout, "the end")


def _checkpoint_steps(stack: Stack, job_id: str) -> list[int]:
    rows = stack.rows("SELECT step FROM checkpoints WHERE job_id = :id ORDER BY step", id=job_id)
    return [row[0] for row in rows]


def _resumed_from(stack: Stack, worker_log: str) -> list[int]:
    return [int(line.rsplit(" ", 1)[-1]) for line in worker_log.splitlines() if "resumed from step" in line]


@pytest.mark.parametrize("kill_at", [12, 120], ids=["before-first-checkpoint", "mid-training"])
def test_kill_9_mid_training_resumes_and_records_every_step_once(make_stack, kill_at: int) -> None:
    stack = make_stack()
    stack.api()
    first = stack.worker("first")
    job_id = _submit(stack)
    stack.wait_job(job_id, lambda j: j["progress_step"] >= kill_at, 60, f"step {kill_at}")
    first.kill()
    # The newest checkpoint recorded when the worker died: a kill between a step's metrics and its
    # checkpoint leaves the one before (the progress alone does not say which).
    expected_resume = max(_checkpoint_steps(stack, job_id), default=0)
    assert expected_resume > 0 or kill_at < 100, "killed mid-training, after the checkpoint at 50 at least"
    second = stack.worker("second")
    done = _finished(stack, job_id)
    assert done["status"] == "succeeded", done["error"]
    assert done["attempts"] == 2
    assert stack.metric_steps(job_id) == ALL_STEPS
    if expected_resume:
        assert _resumed_from(stack, second.log()) == [expected_resume]
    else:
        assert _resumed_from(stack, second.log()) == []  # no checkpoint yet: started over
    assert _checkpoint_steps(stack, job_id) == [50, 100, 150, 200, 250, 300]


def test_kill_9_mid_stack_resumes_every_run_from_its_own_checkpoint(make_stack) -> None:
    stack = make_stack()
    stack.api()
    first = stack.worker("first")
    with stack.client() as client:
        made = client.post("/api/v1/experiments", json={"name": "s", "base": FAULT_SPEC, "grid": {"seed": [0, 1, 2]}})
        assert made.status_code == 202, made.text
    ids = [run["job_id"] for run in made.json()["runs"]]
    for job_id in ids:
        stack.wait_job(job_id, lambda j: j["progress_step"] >= 60, 90, "step 60")
    assert "training a stack of 3 runs" in first.log()
    first.kill()
    killed_at = {job_id: stack.job(job_id)["progress_step"] for job_id in ids}
    second = stack.worker("second")
    for job_id in ids:
        done = _finished(stack, job_id)
        assert done["status"] == "succeeded", done["error"]
        assert done["attempts"] == 2
        assert stack.metric_steps(job_id) == ALL_STEPS  # every step once, none lost
        assert _checkpoint_steps(stack, job_id) == [50, 100, 150, 200, 250, 300]
    # Each run resumed from its own newest checkpoint (alone: the reaper hands them on one by one).
    assert sorted(_resumed_from(stack, second.log())) == sorted((killed_at[i] // 50) * 50 for i in ids)


@pytest.mark.parametrize("fault", ["kill-mid-write@150", "kill-before-manifest@150"])
def test_kill_during_a_checkpoint_write_never_uses_the_half_written_one(make_stack, fault: str) -> None:
    stack = make_stack(fault=fault)
    stack.api()
    first = stack.worker("first")
    job_id = _submit(stack)
    first.proc.wait(60)  # the fault kills it while it writes the step-150 checkpoint
    assert first.proc.returncode == -signal.SIGKILL
    attempt_1 = Path(stack.root) / "artifacts" / "jobs" / job_id / "checkpoints" / "attempt-1"
    left = sorted(path.name for path in attempt_1.iterdir())
    assert "step-00000150.json" not in left  # never committed
    assert _checkpoint_steps(stack, job_id) == [50, 100]
    second = stack.worker("second")
    done = _finished(stack, job_id)
    assert done["status"] == "succeeded", done["error"]
    assert _resumed_from(stack, second.log()) == [100]
    assert stack.metric_steps(job_id) == ALL_STEPS
    keys = stack.rows("SELECT artifact_key FROM checkpoints WHERE job_id = :id AND step = 150", id=job_id)
    assert keys[0][0].startswith(f"jobs/{job_id}/checkpoints/attempt-2/")


def test_a_second_delivery_while_the_first_trainer_lives_does_not_train(make_stack) -> None:
    stack = make_stack()
    stack.api()
    first = stack.worker("first")
    second = stack.worker("second")
    job_id = _submit(stack, {**FAULT_SPEC, "steps": 600})
    running = stack.wait_job(job_id, lambda j: j["progress_step"] >= 20, 60, "training")
    trainer = first if running["claimed_by"].split(":")[1] == str(first.pid) else second
    idle = second if trainer is first else first
    from celery import Celery

    from service.queue import celery_config
    from service.settings import Settings

    # What Redis does after its visibility timeout: the same task, delivered again.
    settings = Settings(
        database_url=stack.database_url,
        broker_url=stack.env["WGAN_BROKER_URL"],
        redis_prefix=stack.env["WGAN_REDIS_PREFIX"],
    )
    duplicate = Celery("duplicate")
    duplicate.conf.update(celery_config(settings))
    duplicate.send_task(TRAIN_TASK, args=[job_id], queue="cpu")
    deadline = time.monotonic() + 30
    while "not claimed" not in idle.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "not claimed" in idle.log()
    done = _finished(stack, job_id)
    assert done["status"] == "succeeded"
    assert done["attempts"] == 1
    assert stack.metric_steps(job_id) == list(range(5, 601, 5))
    assert trainer.alive()


def test_a_frozen_worker_loses_its_job_to_another_and_writes_nothing_after(make_stack) -> None:
    stack = make_stack()
    stack.api()
    workers = [stack.worker("first"), stack.worker("second")]
    job_id = _submit(stack, {**FAULT_SPEC, "steps": 1000, "checkpoint_every": 100})
    running = stack.wait_job(job_id, lambda j: j["progress_step"] >= 60, 60, "training")
    frozen = next(w for w in workers if f":{w.pid}:" in running["claimed_by"])
    other = next(w for w in workers if w is not frozen)
    frozen.signal(signal.SIGSTOP)  # vanishes without a trace: no heartbeat, no goodbye
    frozen_at = time.monotonic()
    taken = stack.wait_job(job_id, lambda j: j["attempts"] == 2 and j["status"] == "running", 30, "a takeover")
    assert f":{other.pid}:" in taken["claimed_by"]
    assert time.monotonic() - frozen_at < 15  # stale after 4 s, reaped within a second or two
    frozen.signal(signal.SIGCONT)
    # The old trainer notices it lost the claim, and stops without writing.
    deadline = time.monotonic() + 20
    while "claim lost" not in frozen.log() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "claim lost" in frozen.log()
    done = _finished(stack, job_id, timeout=240)
    assert done["status"] == "succeeded", done["error"]
    assert done["attempts"] == 2
    assert stack.metric_steps(job_id) == list(range(5, 1001, 5))
    assert frozen.alive()


def test_sigterm_checkpoints_and_requeues_instead_of_failing(make_stack) -> None:
    stack = make_stack()
    stack.api()
    first = stack.worker("first")
    job_id = _submit(stack, {**FAULT_SPEC, "steps": 600, "checkpoint_every": 1000})
    stack.wait_job(job_id, lambda j: j["progress_step"] >= 40, 60, "training")
    first.signal(signal.SIGTERM)
    assert first.proc.wait(30) == 0
    handed_back = stack.job(job_id)
    assert handed_back["status"] == "queued"
    assert handed_back["claimed_by"] is None
    stopped_at = _checkpoint_steps(stack, job_id)
    assert len(stopped_at) == 1  # the stop itself checkpointed (no regular one is due before 600)
    second = stack.worker("second")
    done = _finished(stack, job_id)
    assert done["status"] == "succeeded", done["error"]
    assert _resumed_from(stack, second.log()) == stopped_at
    assert done["attempts"] == 2
    steps = stack.metric_steps(job_id)
    assert steps == sorted(set(steps))
    assert set(range(5, 601, 5)) <= set(steps)
    statuses = [
        row[0]
        for row in stack.rows("SELECT data FROM events WHERE job_id = :id AND type = 'status' ORDER BY seq", id=job_id)
    ]
    assert [s["status"] if isinstance(s, dict) else s for s in statuses] == [
        "queued",
        "running",
        "queued",
        "running",
        "succeeded",
    ]


def test_a_diverging_job_fails_with_the_reason_and_trains_no_further(make_stack) -> None:
    stack = make_stack(fault="nan-weights@22")
    stack.api()
    stack.worker()
    with stack.client() as client:
        job_id = client.post("/api/v1/jobs", json=FAULT_SPEC).json()["id"]
        done = _finished(stack, job_id)
        assert done["status"] == "failed"
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        assert job["error"]["type"] == "diverged"
        assert "nan" in job["error"]["message"]
        assert "between steps 21 and 25" in job["error"]["message"]
        # Nothing from the NaN interval on was recorded or checkpointed.
        assert stack.metric_steps(job_id) == [5, 10, 15, 20]
        assert _checkpoint_steps(stack, job_id) == []
        events = client.get(f"/api/v1/jobs/{job_id}/events")
        assert '"status":"failed"' in events.text.replace(" ", "")
