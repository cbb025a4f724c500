"""Rows → response models, with the links a client follows."""

from __future__ import annotations

from collections.abc import Sequence

from app import schemas
from service import experiments
from service.jobs import latest_metrics
from service.models import CheckpointRow, Dataset, Experiment, Job, MetricRow
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
        experiment_id=row.experiment_id,
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


def experiment_links(experiment_id: str) -> schemas.ExperimentLinks:
    base = f"{API}/experiments/{experiment_id}"
    return schemas.ExperimentLinks(self=base, events=f"{base}/events", cancel=f"{base}/cancel")


def experiment(row: Experiment, runs: Sequence[Job], sort: str | None = None) -> schemas.Experiment:
    results = [experiments.run_result(job) for job in runs]
    ordered = experiments.ranked(results, sort) if sort else results
    primary = next((job.summary["primary"] for job in runs if job.summary), None)
    return schemas.Experiment(
        id=row.id,
        name=row.name,
        created_at=row.created_at,
        base=row.base,
        grid=row.grid,
        primary=primary,
        counts=experiments.status_counts(runs),
        progress=schemas.Progress(
            step=sum(job.progress_step for job in runs), total_steps=sum(job.total_steps for job in runs)
        ),
        finished=all(job.status.final for job in runs),
        runs=[
            schemas.ExperimentRun(
                job_id=result.job.id,
                name=result.job.name,
                overrides=result.job.overrides or {},
                status=result.job.status.status,
                progress=schemas.Progress(step=result.job.progress_step, total_steps=result.job.total_steps),
                final=result.final,
                best=result.best,
                links=job_links(result.job.id),
            )
            for result in ordered
        ],
        groups=[
            schemas.ExperimentGroup(
                point=group.point,
                runs=[member.job.id for member in group.runs],
                final=schemas.Spread(mean=group.final.mean, sd=group.final.sd, n=group.final.n),
                best=schemas.Spread(mean=group.best.mean, sd=group.best.sd, n=group.best.n),
            )
            for group in experiments.groups(results)
        ],
        links=experiment_links(row.id),
    )
