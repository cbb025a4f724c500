"""The job and the experiment as clients see them, and the rows → view presenters: one shape for each, which
the REST API returns and webhooks send (service.webhooks snapshots it when the event happens)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from service import experiments as experiment_results
from service.jobs import latest_metrics
from service.models import Experiment as ExperimentRow, Job as JobRow
from service.records import JobError
from service.repositories.jobs import JobRecord
from service.states import JobStatus
from service.summary import public
from wgan.config import TrainSpec

API = "/api/v1"


class Progress(BaseModel):
    step: int
    total_steps: int


class LatestMetrics(BaseModel):
    step: int
    critic_loss: float | None
    generator_loss: float | None
    wasserstein_estimate: float | None
    gradient_penalty: float | None = None
    seconds_per_step: float | None = None
    exact_w1: float | None = None
    measures: dict[str, float] | None = Field(None, description="The newest evaluation's measures.")


class SummaryAt(BaseModel):
    step: int
    checkpoint_id: str
    value: float


class JobSummary(BaseModel):
    """The job's quality over its checkpoints."""

    primary: str = Field(description="The measure that ranks checkpoints (lower is better): 'exact_w1' or 'frechet'.")
    checkpoints: int
    evaluated: int = Field(description="Checkpoints whose evaluation gave the primary measure.")
    newest: SummaryAt | None
    best: SummaryAt | None = Field(description="Sample from it with ?checkpoint=best.")
    spearman: float | None = Field(
        description="Rank correlation of the critic's Wasserstein estimate with the primary measure over the "
        "checkpoints (the WGAN paper's claim: near 1 when the estimate tracks quality); null below three."
    )


class JobLinks(BaseModel):
    self: str
    events: str
    metrics: str
    samples: str
    checkpoints: str


class Job(BaseModel):
    id: str
    name: str
    status: JobStatus
    spec: TrainSpec = Field(description="The spec with every default filled in.")
    progress: Progress
    latest_metrics: LatestMetrics
    error: JobError | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cancel_requested: bool = Field(description="A cancel was asked for and the worker has not stopped yet.")
    attempts: int = Field(description="How many times a worker has taken the job up (more after a lost worker).")
    summary: JobSummary | None = Field(None, description="Null until the first checkpoint.")
    experiment_id: str | None = Field(None, description="The experiment this job is a run of, if any.")
    links: JobLinks


class ExperimentRun(BaseModel):
    job_id: str
    name: str
    overrides: dict[str, Any]
    status: JobStatus
    progress: Progress
    final: float | None = Field(description="The primary measure at the run's newest checkpoint (lower is better).")
    best: float | None = Field(description="The primary measure at its best checkpoint.")
    links: JobLinks


class Spread(BaseModel):
    mean: float | None
    sd: float | None = Field(description="Sample standard deviation over the seeds; null below two.")
    n: int = Field(description="Runs with a value.")


class ExperimentGroup(BaseModel):
    point: dict[str, Any] = Field(description="The overrides that define the group: every one but the seed.")
    runs: list[str] = Field(description="Its runs' job ids.")
    final: Spread
    best: Spread


class ExperimentLinks(BaseModel):
    self: str
    events: str
    cancel: str


class Experiment(BaseModel):
    id: str
    name: str
    created_at: datetime
    base: dict[str, Any]
    grid: dict[str, list[Any]] | None
    primary: str | None = Field(description="The measure final and best are in: 'exact_w1' or 'frechet'.")
    counts: dict[str, int] = Field(description="Runs by status.")
    progress: Progress = Field(description="Generator steps done over all runs, and their total.")
    finished: bool = Field(description="Every run has ended.")
    runs: list[ExperimentRun] = Field(description="Ordered by ?sort= (default: the grid's order).")
    groups: list[ExperimentGroup] = Field(description="Runs that differ only in seed, with mean ± sd over them.")
    links: ExperimentLinks


def job_links(job_id: str) -> JobLinks:
    base = f"{API}/jobs/{job_id}"
    return JobLinks(
        self=base,
        events=f"{base}/events",
        metrics=f"{base}/metrics",
        samples=f"{base}/samples",
        checkpoints=f"{base}/checkpoints",
    )


def job_view(row: JobRow | JobRecord) -> Job:
    return Job(
        id=row.id,
        name=row.name,
        status=row.status.status,
        spec=TrainSpec.model_validate(row.spec),
        progress=Progress(step=row.progress_step, total_steps=row.total_steps),
        latest_metrics=LatestMetrics.model_validate(latest_metrics(row.latest_metrics)),
        error=JobError.model_validate(row.error) if row.error else None,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        cancel_requested=row.cancel_requested,
        attempts=row.attempts,
        summary=JobSummary.model_validate(public(row.summary)) if row.summary else None,
        experiment_id=row.experiment_id,
        links=job_links(row.id),
    )


def experiment_links(experiment_id: str) -> ExperimentLinks:
    base = f"{API}/experiments/{experiment_id}"
    return ExperimentLinks(self=base, events=f"{base}/events", cancel=f"{base}/cancel")


def experiment_view(row: ExperimentRow, runs: Sequence[JobRow], sort: str | None = None) -> Experiment:
    results = [experiment_results.run_result(job) for job in runs]
    ordered = experiment_results.ranked(results, sort) if sort else results
    primary = next((job.summary["primary"] for job in runs if job.summary), None)
    return Experiment(
        id=row.id,
        name=row.name,
        created_at=row.created_at,
        base=row.base,
        grid=row.grid,
        primary=primary,
        counts=experiment_results.status_counts(runs),
        progress=Progress(
            step=sum(job.progress_step for job in runs), total_steps=sum(job.total_steps for job in runs)
        ),
        finished=all(job.status.final for job in runs),
        runs=[
            ExperimentRun(
                job_id=result.job.id,
                name=result.job.name,
                overrides=result.job.overrides or {},
                status=result.job.status.status,
                progress=Progress(step=result.job.progress_step, total_steps=result.job.total_steps),
                final=result.final,
                best=result.best,
                links=job_links(result.job.id),
            )
            for result in ordered
        ],
        groups=[
            ExperimentGroup(
                point=group.point,
                runs=[member.job.id for member in group.runs],
                final=Spread(mean=group.final.mean, sd=group.final.sd, n=group.final.n),
                best=Spread(mean=group.best.mean, sd=group.best.sd, n=group.best.n),
            )
            for group in experiment_results.groups(results)
        ],
        links=experiment_links(row.id),
    )
