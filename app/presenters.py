"""Rows → response models, with the links a client follows."""

from __future__ import annotations

from app import schemas
from service.jobs import latest_metrics
from service.models import CheckpointRow, Dataset, Job, MetricRow
from service.summary import public
from wgan.config import TrainSpec, image_fitting

API = "/api/v1"


def job_links(job_id: str) -> schemas.JobLinks:
    base = f"{API}/jobs/{job_id}"
    return schemas.JobLinks(
        self=base,
        events=f"{base}/events",
        metrics=f"{base}/metrics",
        samples=f"{base}/samples",
        checkpoints=f"{base}/checkpoints",
    )


def job(row: Job) -> schemas.Job:
    return schemas.Job(
        id=row.id,
        name=row.name,
        status=row.status.status,
        spec=TrainSpec.model_validate(row.spec),
        progress=schemas.Progress(step=row.progress_step, total_steps=row.total_steps),
        latest_metrics=schemas.LatestMetrics.model_validate(latest_metrics(row)),
        error=schemas.JobError.model_validate(row.error) if row.error else None,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        cancel_requested=row.cancel_requested,
        attempts=row.attempts,
        summary=schemas.JobSummary.model_validate(public(row.summary)) if row.summary else None,
        links=job_links(row.id),
    )


def metric(row: MetricRow) -> schemas.Metric:
    return schemas.Metric.of(row)


def checkpoint(row: CheckpointRow) -> schemas.CheckpointOut:
    return schemas.CheckpointOut.model_validate(row)


def dataset(row: Dataset) -> schemas.DatasetOut:
    return schemas.DatasetOut(
        id=row.id,
        name=row.name,
        kind=row.kind,
        shape=row.shape,
        count=row.count,
        builtin=False,
        description="Uploaded." + (f" {image_fitting(tuple(row.shape))}" if row.kind == "images" else ""),
        created_at=row.created_at,
    )
