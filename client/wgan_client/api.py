"""The service's API described once, as data: each function gives the Call (or Pages, or Follower) for one
operation, and how its answer is read. Client and AsyncClient send them; neither builds a request itself."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter

from wgan_client._core import Call, Cursor, Pages
from wgan_client.models import (
    Checkpoint,
    CheckpointEvent,
    CheckpointList,
    Dataset,
    DatasetList,
    Experiment,
    ExperimentEvent,
    ExperimentFinished,
    ExperimentPage,
    FinishedEvent,
    Job,
    JobEvent,
    JobPage,
    JobPreview,
    JobStatus,
    Metric,
    MetricHistory,
    MetricPage,
    MetricsEvent,
    OtherEvent,
    RunCheckpoint,
    RunCheckpointEvent,
    RunStatus,
    RunStatusEvent,
    StatusChange,
    StatusEvent,
    UploadedDataset,
)
from wgan_client.sse import Follower, RawEvent

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from PIL import Image

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

JobRef = Job | str
ExperimentRef = Experiment | str
DatasetRef = Dataset | UploadedDataset | str
# A checkpoint's id, its step, or 'latest' / 'best'.
CheckpointRef = Checkpoint | str | int
Spec = Mapping[str, Any] | BaseModel
SampleFormat = Literal["png", "json", "npy", "gif", "webp"]
WalkPath = Literal["slerp", "lerp"]
GeneratorFormat = Literal["onnx", "safetensors"]

JOBS = "/api/v1/jobs"
EXPERIMENTS = "/api/v1/experiments"
DATASETS = "/api/v1/datasets"
IMAGES_EXTRA = "samples as images and arrays need Pillow and numpy: pip install 'wgan-client[images]'"


def _segment(value: str | int) -> str:
    return quote(str(value), safe="")


def job_path(job: JobRef, *rest: str) -> str:
    return "/".join((JOBS, _segment(job.id if isinstance(job, Job) else job), *rest))


def experiment_path(experiment: ExperimentRef, *rest: str) -> str:
    return "/".join((EXPERIMENTS, _segment(experiment.id if isinstance(experiment, Experiment) else experiment), *rest))


def dataset_path(dataset: DatasetRef) -> str:
    if isinstance(dataset, str):
        return f"{DATASETS}/{_segment(dataset)}"
    if dataset.id is None:
        raise ValueError(f"{dataset.name!r} is built in: only uploads have an id")
    return f"{DATASETS}/{_segment(dataset.id)}"


def _checkpoint(ref: CheckpointRef) -> str:
    return ref.id if isinstance(ref, Checkpoint) else str(ref)


def _model(model: type[M]) -> Callable[[httpx.Response], M]:
    return lambda response: model.model_validate_json(response.content)


def _nothing(_response: httpx.Response) -> None:
    return None


def _body(spec: Spec) -> Any:
    # A model sends what was set in it: the server fills in the defaults, and shows them on the job.
    return spec.model_dump(mode="json", exclude_unset=True) if isinstance(spec, BaseModel) else dict(spec)


def _idempotent_post(path: str, body: Any, key: str | None, read: Callable[[httpx.Response], M]) -> Call[M]:
    # One key for the whole call, every retry included: the service answers a repeat with the first result,
    # so a retried submission never makes a second job.
    return Call(
        "POST", path, read=read, json=body, headers={"Idempotency-Key": key or str(uuid.uuid4())}, replayable=True
    )


def submit(spec: Spec, idempotency_key: str | None = None) -> Call[Job]:
    return _idempotent_post(JOBS, _body(spec), idempotency_key, _model(Job))


def preview(spec: Spec) -> Call[JobPreview]:
    return Call("POST", f"{JOBS}/preview", read=_model(JobPreview), json=_body(spec))


def get_job(job: JobRef) -> Call[Job]:
    return Call("GET", job_path(job), read=_model(Job))


def _by_cursor(
    path: str, params: Mapping[str, Any], read_page: Callable[[bytes], tuple[Sequence[T], Cursor]]
) -> Pages[T]:
    """A listing paged by an opaque cursor (the last page's next_cursor), as jobs and experiments are."""

    def page(cursor: Cursor) -> Call[tuple[Sequence[T], Cursor]]:
        query = {**params, "cursor": cursor} if cursor is not None else params
        return Call("GET", path, read=lambda response: read_page(response.content), params=query)

    return Pages(page)


def jobs(status: JobStatus | str | None = None, page_size: int = 50) -> Pages[Job]:
    def read(content: bytes) -> tuple[Sequence[Job], Cursor]:
        found = JobPage.model_validate_json(content)
        return found.items, found.next_cursor

    params = {"limit": page_size} if status is None else {"limit": page_size, "status": str(status)}
    return _by_cursor(JOBS, params, read)


def cancel(job: JobRef) -> Call[Job]:
    # Not resent after a broken connection: had the first cancel landed, a second would be a 409.
    return Call("POST", job_path(job, "cancel"), read=_model(Job), replayable=False)


def delete(job: JobRef) -> Call[None]:
    return Call("DELETE", job_path(job), read=_nothing, replayable=False)


def metrics(job: JobRef, after_step: int = 0, page_size: int = 1000) -> Pages[Metric]:
    def page(cursor: Cursor) -> Call[tuple[Sequence[Metric], Cursor]]:
        def read(response: httpx.Response) -> tuple[Sequence[Metric], Cursor]:
            found = MetricPage.model_validate_json(response.content)
            return found.items, found.next_after_step

        after = after_step if cursor is None else cursor
        return Call("GET", job_path(job, "metrics"), read=read, params={"after_step": after, "limit": page_size})

    return Pages(page)


def history(
    job: JobRef, buckets: int | None = None, from_step: int | None = None, to_step: int | None = None
) -> Call[MetricHistory]:
    wanted = {"buckets": buckets, "from_step": from_step, "to_step": to_step}
    params = {name: value for name, value in wanted.items() if value is not None}
    return Call(
        "GET",
        job_path(job, "metrics/history"),
        read=lambda r: MetricHistory.model_validate_json(r.content),
        params=params,
    )


def checkpoints(job: JobRef) -> Call[list[Checkpoint]]:
    return Call("GET", job_path(job, "checkpoints"), read=lambda r: CheckpointList.model_validate_json(r.content).items)


def samples_raw(
    job: JobRef,
    n: int = 64,
    seed: int = 0,
    checkpoint: CheckpointRef = "latest",
    format: SampleFormat = "png",
    interpolate: tuple[int, int] | None = None,
    frames: int = 16,
    path: WalkPath = "slerp",
) -> Call[bytes]:
    params: dict[str, Any] = {"n": n, "seed": seed, "checkpoint": _checkpoint(checkpoint), "format": format}
    if interpolate is not None:
        params |= {"interpolate": f"{interpolate[0]},{interpolate[1]}", "frames": frames, "path": path}
    return Call("GET", job_path(job, "samples"), read=lambda response: response.content, params=params)


def _then(call: Call[bytes], convert: Callable[[bytes], Any]) -> Call[Any]:
    read = call.read
    return replace(call, read=lambda response: convert(read(response)))


def as_array(content: bytes) -> npt.NDArray[np.float32]:
    try:
        import numpy as np
    except ImportError as exc:
        raise ImportError(IMAGES_EXTRA) from exc
    array: npt.NDArray[np.float32] = np.load(io.BytesIO(content), allow_pickle=False)
    return array


def as_image(content: bytes) -> Image.Image:
    try:
        from PIL import Image
    except ImportError as exc:
        raise ImportError(IMAGES_EXTRA) from exc
    image = Image.open(io.BytesIO(content))
    image.load()
    return image


def samples(
    job: JobRef,
    n: int,
    seed: int,
    checkpoint: CheckpointRef,
    format: Literal["numpy", "pil"],
    interpolate: tuple[int, int] | None,
    frames: int,
    path: WalkPath,
) -> Call[Any]:
    """Samples as a numpy array (the service's npy) or a PIL image (its png: a grid, a scatter plot of 2-D
    points, or a walk's strip); the client methods type the answer by `format`."""
    wire: SampleFormat = "npy" if format == "numpy" else "png"
    raw = samples_raw(job, n, seed, checkpoint, wire, interpolate, frames, path)
    return _then(raw, as_array if format == "numpy" else as_image)


def _generator_path(job: JobRef, checkpoint: CheckpointRef) -> str:
    return job_path(job, "checkpoints", _segment(_checkpoint(checkpoint)), "generator")


def generator(job: JobRef, checkpoint: CheckpointRef = "latest", format: GeneratorFormat = "onnx") -> Call[bytes]:
    path = _generator_path(job, checkpoint)
    return Call("GET", path, read=lambda response: response.content, params={"format": format})


def model_card(job: JobRef, checkpoint: CheckpointRef = "latest") -> Call[dict[str, Any]]:
    path = _generator_path(job, checkpoint)
    return Call("GET", path, read=lambda response: dict(response.json()), params={"format": "card"})


def datasets() -> Call[list[Dataset]]:
    return Call("GET", DATASETS, read=lambda response: DatasetList.model_validate_json(response.content).items)


def get_dataset(dataset: DatasetRef) -> Call[Dataset]:
    return Call("GET", dataset_path(dataset), read=_model(Dataset))


def upload_dataset(path: str | Path, name: str | None = None) -> Call[UploadedDataset]:
    source = Path(path)
    # Read whole: uploads are bounded by the service (WGAN_MAX_UPLOAD_BYTES), and a retry resends the same bytes.
    files = {"file": (source.name, source.read_bytes(), "application/octet-stream")}
    return Call(
        "POST",
        DATASETS,
        read=_model(UploadedDataset),
        files=files,
        data={"name": name} if name is not None else None,
        replayable=False,
    )


def delete_dataset(dataset: DatasetRef) -> Call[None]:
    return Call("DELETE", dataset_path(dataset), read=_nothing, replayable=False)


def submit_experiment(
    name: str,
    base: Spec,
    grid: Mapping[str, Sequence[Any]] | None = None,
    runs: Sequence[Mapping[str, Any]] | None = None,
    idempotency_key: str | None = None,
) -> Call[Experiment]:
    if (grid is None) == (runs is None):
        raise ValueError("give an experiment either a grid or a list of runs")
    body: dict[str, Any] = {"name": name, "base": _body(base)}
    if grid is not None:
        body["grid"] = {path: list(values) for path, values in grid.items()}
    if runs is not None:
        body["runs"] = [dict(run) for run in runs]
    return _idempotent_post(EXPERIMENTS, body, idempotency_key, _model(Experiment))


def get_experiment(experiment: ExperimentRef, sort: str | None = None) -> Call[Experiment]:
    params = {"sort": sort} if sort is not None else None
    return Call("GET", experiment_path(experiment), read=_model(Experiment), params=params)


def experiments(page_size: int = 20) -> Pages[Experiment]:
    def read(content: bytes) -> tuple[Sequence[Experiment], Cursor]:
        found = ExperimentPage.model_validate_json(content)
        return found.items, found.next_cursor

    return _by_cursor(EXPERIMENTS, {"limit": page_size}, read)


def cancel_experiment(experiment: ExperimentRef) -> Call[Experiment]:
    return Call("POST", experiment_path(experiment, "cancel"), read=_model(Experiment), replayable=False)


def delete_experiment(experiment: ExperimentRef) -> Call[None]:
    return Call("DELETE", experiment_path(experiment), read=_nothing, replayable=False)


_JOB_EVENTS: dict[str, tuple[type[Any], TypeAdapter[Any]]] = {
    MetricsEvent.type: (MetricsEvent, TypeAdapter(list[Metric])),
    StatusEvent.type: (StatusEvent, TypeAdapter(StatusChange)),
    CheckpointEvent.type: (CheckpointEvent, TypeAdapter(Checkpoint)),
}
_EXPERIMENT_EVENTS: dict[str, tuple[type[Any], TypeAdapter[Any]]] = {
    RunStatusEvent.type: (RunStatusEvent, TypeAdapter(RunStatus)),
    RunCheckpointEvent.type: (RunCheckpointEvent, TypeAdapter(RunCheckpoint)),
    FinishedEvent.type: (FinishedEvent, TypeAdapter(ExperimentFinished)),
}
_ANY: TypeAdapter[Any] = TypeAdapter(Any)


def _decoder(kinds: dict[str, tuple[type[Any], TypeAdapter[Any]]]) -> Callable[[RawEvent], Any]:
    def decode(raw: RawEvent) -> Any:
        known = kinds.get(raw.type)
        if known is None:
            return OtherEvent(raw.id or "", _ANY.validate_json(raw.data), kind=raw.type)
        kind, adapter = known
        return kind(raw.id or "", adapter.validate_json(raw.data))

    return decode


def _job_ended(event: JobEvent) -> bool:
    return isinstance(event, StatusEvent) and event.data.status.final


def _experiment_ended(event: ExperimentEvent) -> bool:
    return isinstance(event, FinishedEvent)


def job_events(job: JobRef, **follow: Any) -> Follower[JobEvent]:
    """A job's stream; `follow` is the Follower's settings (max_reconnects, timeout, last_event_id, deadline)."""
    return Follower(job_path(job, "events"), _decoder(_JOB_EVENTS), _job_ended, **follow)


def experiment_events(experiment: ExperimentRef, **follow: Any) -> Follower[ExperimentEvent]:
    return Follower(experiment_path(experiment, "events"), _decoder(_EXPERIMENT_EVENTS), _experiment_ended, **follow)
