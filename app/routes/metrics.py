"""/api/v1/jobs/{id}/metrics and /checkpoints: what the worker has recorded, in step order."""

# No `from __future__ import annotations`: the page limit below is a local of routes(), read by FastAPI.
from typing import Annotated

from fastapi import APIRouter, Query

from app import presenters, schemas
from app.deps import ReadSessionDep
from app.openapi import PROBLEMS
from app.routes.jobs import JobDep
from service.repositories import checkpoints as checkpoint_repo, metrics as metric_repo
from service.repositories.checkpoints import MAX_STEP
from service.settings import Settings


def routes(settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/api/v1/jobs", tags=["metrics"])

    @router.get(
        "/{job_id}/metrics",
        response_model=schemas.MetricPage,
        responses=PROBLEMS(401, 404, 422),
        summary="Recorded metric points after a step, in step order",
    )
    def list_metrics(
        session: ReadSessionDep,
        job: JobDep,
        after_step: Annotated[int, Query(ge=0, le=MAX_STEP)] = 0,
        limit: Annotated[int, Query(ge=1, le=settings.metrics_page_limit)] = 1000,
    ) -> schemas.MetricPage:
        rows = metric_repo.after(session, job.id, after_step, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return schemas.MetricPage(
            items=[presenters.metric(row) for row in rows], next_after_step=rows[-1].step if more else None
        )

    @router.get(
        "/{job_id}/checkpoints",
        response_model=schemas.CheckpointList,
        responses=PROBLEMS(401, 404),
        summary="The job's checkpoints, oldest first",
    )
    def list_checkpoints(session: ReadSessionDep, job: JobDep) -> schemas.CheckpointList:
        return schemas.CheckpointList(
            items=[presenters.checkpoint(row) for row in checkpoint_repo.for_job(session, job.id)]
        )

    return router
