"""The sync client against the real stack: a job's life, listings across pages, samples, errors, uploads,
experiments."""

from __future__ import annotations

import io
import time
from typing import Any

import httpx
import numpy as np
import onnx
import pytest
from PIL import Image

from tests.client.conftest import WAIT_SECONDS
from tests.conftest import TOY_SPEC, make_key
from wgan_client import (
    Client,
    FinishedEvent,
    Job,
    JobStatus,
    Metric,
    NotFound,
    RunStatusEvent,
    Unauthorized,
    ValidationFailed,
    WaitTimeout,
)

QUICK = {**TOY_SPEC, "steps": 10, "checkpoint_every": 10}


def test_submit_then_wait_gives_the_job_as_it_ended(trained: Job) -> None:
    assert trained.status is JobStatus.SUCCEEDED
    assert trained.progress.step == trained.progress.total_steps == 60
    assert trained.finished_at is not None and trained.started_at is not None
    assert trained.spec["dataset"]["name"] == "8gaussians"  # the spec as the server filled it in
    assert trained.summary is not None and trained.summary.checkpoints == 3


def test_samples_as_an_array_and_an_image(wgan: Client, trained: Job) -> None:
    points = wgan.samples(trained, n=16, seed=3)
    assert isinstance(points, np.ndarray)
    assert points.shape == (16, 2) and points.dtype == np.float32
    assert np.array_equal(points, np.load(io.BytesIO(wgan.samples_raw(trained, n=16, seed=3, format="npy"))))
    assert not np.array_equal(points, wgan.samples(trained, n=16, seed=4))

    image = wgan.samples(trained, n=16, seed=3, format="pil")
    assert isinstance(image, Image.Image)
    assert image.format == "PNG" and image.width > 100 and image.height > 100

    walk = wgan.samples(trained, interpolate=(0, 1), frames=5, path="lerp")
    assert walk.shape == (5, 2)
    # A walk starts at seed A's first sample.
    assert np.allclose(walk[0], wgan.samples(trained, n=1, seed=0)[0], atol=1e-5)


def test_metrics_iterate_every_point_once_as_the_pages_give_them(
    wgan: Client, trained: Job, api: str, owner_key: str
) -> None:
    points = list(wgan.metrics(trained, page_size=4))
    assert [point.step for point in points] == list(range(5, 61, 5))

    pages: list[dict[str, Any]] = []
    with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {owner_key}"}) as http:
        after: int | None = 0
        while after is not None:
            page = http.get(f"/api/v1/jobs/{trained.id}/metrics", params={"after_step": after, "limit": 4}).json()
            pages.extend(page["items"])
            after = page["next_after_step"]
    assert points == [Metric.model_validate(item) for item in pages]
    assert [point.step for point in wgan.metrics(trained, after_step=50)] == [55, 60]


def test_history_is_the_points_downsampled(wgan: Client, trained: Job) -> None:
    points = list(wgan.metrics(trained))
    history = wgan.history(trained, buckets=3)
    assert len(history.count) <= 3 and history.points == sum(history.count) == len(points)
    assert history.series.critic_loss.last[-1] == points[-1].critic_loss
    assert max(v for v in history.series.critic_loss.max if v is not None) == max(p.critic_loss for p in points)
    assert history.measured.step and history.measured.step[-1] == points[-1].step
    ranged = wgan.history(trained, from_step=30, to_step=40)
    assert ranged.first_step[0] <= 30 and ranged.last_step[-1] >= 40


def test_checkpoints_and_the_generator_to_take_away(wgan: Client, trained: Job) -> None:
    checkpoints = wgan.checkpoints(trained)
    assert [checkpoint.step for checkpoint in checkpoints] == [20, 40, 60]
    assert all(checkpoint.measures and "exact_w1" in checkpoint.measures for checkpoint in checkpoints)
    onnx_bytes = wgan.generator(trained, checkpoints[0])
    graph = onnx.load_from_string(onnx_bytes).graph
    assert [item.name for item in graph.input] == ["z"] and [item.name for item in graph.output] == ["x"]
    weights = wgan.generator(trained, 20, format="safetensors")
    header = int.from_bytes(weights[:8], "little")
    assert weights[8 : 8 + header].startswith(b"{")  # safetensors: a little-endian length, then a JSON header
    card = wgan.model_card(trained, "best")
    assert card["job_id"] == trained.id and card["spec"]["steps"] == 60


def test_list_iterates_every_page_newest_first(api: str, worker: Any) -> None:
    with Client(api, make_key()) as own:
        made = [own.submit(QUICK) for _ in range(3)]
        listed = list(own.list(page_size=2))
        assert [job.id for job in listed] == [job.id for job in reversed(made)]
        # Cancelled rather than trained: the worker has other tests' jobs to get to.
        for job in made[1:]:
            own.cancel(job)
            own.wait(job, timeout=WAIT_SECONDS)
        assert [job.id for job in own.list(status="cancelled", page_size=1)] == [made[2].id, made[1].id]
        assert [job.id for job in own.list(status=JobStatus.FAILED)] == []
        own.cancel(made[0])


def test_wait_times_out_then_cancel_then_delete(wgan: Client, worker: Any) -> None:
    job = wgan.submit({**TOY_SPEC, "steps": 100_000, "checkpoint_every": 100_000})
    started = time.monotonic()
    with pytest.raises(WaitTimeout):
        wgan.wait(job, timeout=1)
    assert time.monotonic() - started < 5
    cancelled = wgan.cancel(job)
    assert cancelled.id == job.id and (cancelled.cancel_requested or cancelled.status is JobStatus.CANCELLED)
    ended = wgan.wait(job, timeout=WAIT_SECONDS)
    assert ended.status is JobStatus.CANCELLED
    wgan.delete(job)
    with pytest.raises(NotFound):
        wgan.get(job)


def test_errors_carry_the_problem_details(wgan: Client, trained: Job, api: str) -> None:
    with Client(api, make_key()) as stranger, pytest.raises(NotFound) as missing:
        stranger.get(trained)
    assert missing.value.status == 404
    assert missing.value.title == "Not Found"
    assert missing.value.instance == f"/api/v1/jobs/{trained.id}"
    assert trained.id in missing.value.detail

    with pytest.raises(ValidationFailed) as invalid:
        wgan.submit({**TOY_SPEC, "steps": "100"})
    assert invalid.value.status == 422
    assert invalid.value.errors and ["body", "steps"] in [error["loc"] for error in invalid.value.errors]

    with Client(api, "wgan_not-a-key") as anonymous, pytest.raises(Unauthorized) as refused:
        anonymous.get(trained)
    assert refused.value.status == 401


def test_preview_fills_in_the_spec_and_creates_nothing(api: str, database: str) -> None:
    with Client(api, make_key()) as own:
        preview = own.preview(TOY_SPEC)
        assert preview.spec["steps"] == 60 and preview.spec["loss"]["kind"] == "wgan-gp"
        assert preview.cost.generator_params > 0 and preview.estimate.seconds > 0
        assert list(own.list()) == []


def test_upload_a_dataset_read_it_and_delete_it(wgan: Client, tmp_path: Any) -> None:
    path = tmp_path / "ring.npz"
    angles = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    np.savez(path, x=np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32))
    uploaded = wgan.upload_dataset(path)
    assert (uploaded.name, uploaded.count, uploaded.shape, uploaded.kind) == ("ring", 64, [2], "points")
    found = wgan.get_dataset(uploaded)
    assert found.id == uploaded.id and not found.builtin
    listed = {dataset.name: dataset for dataset in wgan.datasets()}
    assert listed["8gaussians"].builtin and listed["ring"].id == uploaded.id
    named = wgan.upload_dataset(path, name="another ring")
    assert named.name == "another ring"
    for dataset in (uploaded, named):
        wgan.delete_dataset(dataset)
        with pytest.raises(NotFound):
            wgan.get_dataset(dataset)


def test_an_experiment_of_two_runs(wgan: Client, worker: Any) -> None:
    experiment = wgan.submit_experiment(
        "two seeds", {**TOY_SPEC, "steps": 10, "checkpoint_every": 10}, grid={"seed": [0, 1]}
    )
    assert [run.overrides for run in experiment.runs] == [{"seed": 0}, {"seed": 1}]
    ended = wgan.wait_experiment(experiment, timeout=WAIT_SECONDS)
    assert ended.finished and ended.counts == {"succeeded": 2}
    assert all(run.final is not None and run.best is not None for run in ended.runs)
    assert ended.groups[0].final.n == 2 and ended.groups[0].final.mean is not None
    ranked = wgan.get_experiment(experiment, sort="best")
    assert [run.best for run in ranked.runs] == sorted(run.best for run in ended.runs if run.best is not None)
    assert experiment.id in [found.id for found in wgan.list_experiments(page_size=1)]

    events = list(wgan.follow_experiment(experiment))
    assert isinstance(events[-1], FinishedEvent) and events[-1].data.counts == {"succeeded": 2}
    finals = {e.data.job_id for e in events if isinstance(e, RunStatusEvent) and e.data.status.final}
    assert finals == {run.job_id for run in ended.runs}

    wgan.delete_experiment(experiment)
    with pytest.raises(NotFound):
        wgan.get_experiment(experiment)
