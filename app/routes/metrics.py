"""/api/v1/jobs/{id}/metrics and /checkpoints: what the worker has recorded, in step order."""

# No `from __future__ import annotations`: the page limit below is a local of routes(), read by FastAPI.
from typing import Annotated

from fastapi import APIRouter, Query, Response

from app import presenters, schemas
from app.deps import CallerDep
from app.openapi import PROBLEMS
from app.replies import reply
from app.routes.jobs import owned_job
from service import history
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
        caller: CallerDep,
        job_id: str,
        after_step: Annotated[int, Query(ge=0, le=MAX_STEP)] = 0,
        limit: Annotated[int, Query(ge=1, le=settings.metrics_page_limit)] = 1000,
    ) -> Response:
        with caller.reads() as (session, principal):
            job = owned_job(session, principal, job_id)
            items, next_after_step = metric_repo.page_json(session, job.id, after_step, limit)
        # The points' JSON passes through as the database (or the repository) wrote it: pydantic per point
        # costs tens of µs, which a full read of a million-point job would pay a million times.
        tail = "null" if next_after_step is None else str(next_after_step)
        return Response(f'{{"items":{items},"next_after_step":{tail}}}', media_type="application/json")

    @router.get(
        "/{job_id}/metrics/history",
        response_model=schemas.MetricHistory,
        responses=PROBLEMS(401, 404, 422),
        summary="The job's metrics downsampled to buckets (min, max and last of each series): any length, "
        "one small read",
    )
    def metric_history(
        caller: CallerDep,
        job_id: str,
        buckets: Annotated[
            int, Query(ge=1, le=settings.max_history_buckets, description="How many buckets, at most.")
        ] = settings.history_buckets,
        from_step: Annotated[
            int | None, Query(ge=0, le=MAX_STEP, description="The first step wanted (default: the first).")
        ] = None,
        to_step: Annotated[
            int | None, Query(ge=0, le=MAX_STEP, description="The last step wanted (default: the newest).")
        ] = None,
    ) -> Response:
        # The job row, and its newest event, were read before the points: the stream followed on from
        # last_event_id can repeat a point the history has (clients skip steps they hold), never miss one.
        with caller.reads() as (session, principal):
            job = owned_job(session, principal, job_id)
            found = history.read(session, job.id, buckets, job.event_seq, from_step, to_step)
        # Serialised once, here: FastAPI would validate the thousands of values again on the way out.
        return reply(found)

    @router.get(
        "/{job_id}/checkpoints",
        response_model=schemas.CheckpointList,
        responses=PROBLEMS(401, 404),
        summary="The job's checkpoints, oldest first",
    )
    def list_checkpoints(caller: CallerDep, job_id: str) -> Response:
        with caller.reads() as (session, principal):
            job = owned_job(session, principal, job_id)
            rows = checkpoint_repo.for_job(session, job.id)
            return reply(schemas.CheckpointList(items=[presenters.checkpoint(row) for row in rows]))

    return router
