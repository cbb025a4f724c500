"""Runs of an experiment trained as one stack by the real worker: each stays its own job (claim,
metrics, checkpoints, end), one can be cancelled alone, and runs that do not fit train alone."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np

from service import stacking
from service.models import Job
from tests.conftest import TOY_SPEC, wait_for, wait_for_status
from tests.support.processes import ServiceProcess
from tests.support.service import settings
from wgan.assemble import assemble
from wgan.config import TrainSpec
from wgan.stacked import run_bytes


def submit(client: httpx.Client, base: dict[str, Any], grid: dict[str, list[Any]]) -> list[str]:
    made = client.post("/api/v1/experiments", json={"name": "stacked", "base": base, "grid": grid})
    assert made.status_code == 202, made.text
    return [run["job_id"] for run in made.json()["runs"]]


def stack_lines(worker: ServiceProcess, job_ids: list[str]) -> list[str]:
    return [line for line in worker.log().splitlines() if "training a stack of" in line and job_ids[0] in line]


def test_seeds_train_as_one_stack_and_each_run_is_whole(client: httpx.Client, worker: ServiceProcess) -> None:
    ids = submit(client, {**TOY_SPEC, "evaluate": False}, {"seed": [0, 1, 2], "optimizer.lr": [1e-3]})
    jobs = [wait_for_status(client, job_id, {"succeeded", "failed"}) for job_id in ids]
    assert [job["status"] for job in jobs] == ["succeeded"] * 3, [job["error"] for job in jobs]
    [line] = stack_lines(worker, ids)
    assert "a stack of 3 runs" in line and all(job_id in line for job_id in ids)
    steps = list(range(TOY_SPEC["log_every"], TOY_SPEC["steps"] + 1, TOY_SPEC["log_every"]))
    finals = []
    for job_id in ids:
        metrics = client.get(f"/api/v1/jobs/{job_id}/metrics", params={"limit": 1000}).json()["items"]
        assert [m["step"] for m in metrics] == steps  # every step once, per run
        checkpoints = client.get(f"/api/v1/jobs/{job_id}/checkpoints").json()["items"]
        assert [c["step"] for c in checkpoints] == [20, 40, 60]
        sample = client.get(f"/api/v1/jobs/{job_id}/samples", params={"n": 8, "format": "npy"})
        assert sample.status_code == 200
        finals.append(metrics[-1]["critic_loss"])
    assert len(set(finals)) == 3  # three seeds, three different runs


def test_one_run_cancelled_mid_stack_leaves_the_others_training(client: httpx.Client, worker: ServiceProcess) -> None:
    long = {**TOY_SPEC, "steps": 500, "checkpoint_every": 250, "evaluate": False}
    ids = submit(client, long, {"seed": [0, 1, 2]})
    wait_for(
        lambda: all(client.get(f"/api/v1/jobs/{i}").json()["progress"]["step"] > 0 for i in ids),
        60,
        "the stack to train",
    )
    assert client.post(f"/api/v1/jobs/{ids[1]}/cancel").status_code == 202
    cancelled = wait_for_status(client, ids[1], {"cancelled", "failed", "succeeded"})
    assert cancelled["status"] == "cancelled"
    stopped_at = cancelled["progress"]["step"]
    checkpoints = client.get(f"/api/v1/jobs/{ids[1]}/checkpoints").json()["items"]
    assert checkpoints[-1]["step"] == stopped_at < long["steps"]
    for job_id in (ids[0], ids[2]):
        done = wait_for_status(client, job_id, {"succeeded", "failed"}, timeout=180)
        assert done["status"] == "succeeded"
        # Ended as soon as it left the stack, while the others trained on to their last step.
        assert cancelled["finished_at"] < done["finished_at"]
        assert done["progress"]["step"] == long["steps"]
    [line] = stack_lines(worker, ids)
    assert "a stack of 3 runs" in line


def test_runs_that_do_not_fit_together_train_alone(client: httpx.Client, worker: ServiceProcess) -> None:
    ids = submit(client, {**TOY_SPEC, "steps": 20, "evaluate": False}, {"batch_size": [16, 32]})
    for job_id in ids:
        assert wait_for_status(client, job_id, {"succeeded", "failed"})["status"] == "succeeded"
    assert stack_lines(worker, ids) == []


def _jobs(specs: list[TrainSpec]) -> list[Job]:
    return [Job(id=str(i), spec=spec.model_dump(mode="json"), queue="cpu") for i, spec in enumerate(specs)]


def test_stacks_respect_their_run_and_memory_bounds() -> None:
    spec = assemble(TrainSpec.model_validate({**TOY_SPEC, "seed": 0})).spec
    specs = [spec.model_copy(update={"seed": seed}) for seed in range(10)]
    limits = settings().model_copy(update={"max_stack_runs": 8, "max_running_per_owner": 4})
    assert [len(group) for group in stacking.plan(_jobs(specs), limits)] == [4, 4, 2]
    # Room for three runs by memory, whatever the run limit says.
    tight = limits.model_copy(update={"max_stack_bytes": 3 * run_bytes(spec) + 1, "max_running_per_owner": 8})
    assert [len(group) for group in stacking.plan(_jobs(specs), tight)] == [3, 3, 3, 1]
    assert [len(group) for group in stacking.plan(_jobs(specs), limits.model_copy(update={"max_stack_runs": 1}))] == [
        1
    ] * 10
    # Different shapes never share a stack, and keep their order within their own.
    mixed = [*specs[:2], spec.model_copy(update={"batch_size": 16}), specs[2]]
    groups = stacking.plan(_jobs(mixed), limits)
    assert sorted([job.id for job in group] for group in groups) == [["0", "1", "3"], ["2"]]
    assert np.isfinite(run_bytes(spec)) and run_bytes(spec) > 0
    # Convnets stack on GPU queues only: on a CPU their grouped convolutions are slower than one by one.
    dcgan = assemble(TrainSpec.model_validate({"dataset": {"name": "digits"}, "steps": 4})).spec
    convnets = [dcgan.model_copy(update={"seed": seed}) for seed in range(3)]
    assert [len(group) for group in stacking.plan(_jobs(convnets), limits)] == [1, 1, 1]
    on_gpu = [Job(id=str(i), spec=s.model_dump(mode="json"), queue="gpu") for i, s in enumerate(convnets)]
    assert [len(group) for group in stacking.plan(on_gpu, limits)] == [3]
