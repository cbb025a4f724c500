"""Job flows shared by the API: create (resolving the spec against its data), cancel, delete."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from service.errors import Conflict, InvalidInput
from service.models import FINAL_STATUSES, Job
from service.principal import Principal
from service.queue import queue_for
from service.repositories import datasets as dataset_repo
from service.repositories import jobs as job_repo
from service.settings import Settings
from wgan.config import SpecError, TrainSpec, resolve
from wgan.data.sources import BUILTIN

BODY = "body"


def resolve_spec(session: Session, principal: Principal, spec: TrainSpec, settings: Settings) -> TrainSpec:
    """Fill every default against the job's data set, or raise InvalidInput naming the field."""
    if spec.dataset.id is not None:
        dataset = dataset_repo.get(session, spec.dataset.id, principal)
        if dataset is None:
            raise InvalidInput(
                "the data set does not exist", [((BODY, "dataset", "id"), "no uploaded data set with this id")]
            )
        kind, shape, label = dataset.kind, tuple(dataset.shape), dataset.name
    else:
        assert spec.dataset.name is not None
        info = BUILTIN.get(spec.dataset.name)
        if info is None:
            raise InvalidInput(
                "unknown data set",
                [((BODY, "dataset", "name"), f"choose one of {', '.join(BUILTIN)}, or upload one and give its id")],
            )
        kind, shape, label = info.kind, info.shape, info.name
    try:
        resolved = resolve(spec, "points" if kind == "points" else "images", shape, dataset_label=label)
    except SpecError as exc:
        raise InvalidInput(exc.msg, [((BODY, *exc.loc), exc.msg)]) from exc
    image_size = resolved.model.image_size
    if image_size is not None and image_size > settings.max_image_size:
        raise InvalidInput(
            "image too large",
            [
                (
                    (BODY, "model", "image_size"),
                    f"at most {settings.max_image_size}; this data set's images are "
                    f"{shape[-1]} px, so set model.image_size",
                )
            ],
        )
    return resolved


def create_job(session: Session, principal: Principal, spec: TrainSpec, settings: Settings) -> Job:
    resolved = resolve_spec(session, principal, spec, settings)
    assert resolved.name is not None
    return job_repo.create(
        session,
        owner_id=principal.owner_id,
        name=resolved.name,
        spec=resolved.model_dump(mode="json"),
        queue=queue_for(resolved.device),
        dataset_id=resolved.dataset.id,
        total_steps=resolved.steps,
    )


def request_cancel(session: Session, job: Job) -> None:
    """A queued job is cancelled at once; a running one is asked to stop and checkpoint."""
    if job.status in FINAL_STATUSES:
        raise Conflict(f"the job has already {job.status}")
    if job.status == "queued":
        job_repo.set_status(session, job, "cancelled")
    else:
        job.cancel_requested = True


def delete_job(session: Session, job: Job) -> None:
    """Delete the job's rows; the caller removes its artifacts once that has committed."""
    if job.status == "running":
        raise Conflict("the job is running: cancel it first, then delete it")
    job_repo.delete_job(session, job)


def latest_metrics(job: Job) -> dict[str, Any]:
    base: dict[str, Any] = {"step": 0, "critic_loss": None, "generator_loss": None, "wasserstein_estimate": None}
    return {**base, **(job.latest_metrics or {})}
