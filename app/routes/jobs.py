"""/api/v1/jobs: submit (idempotent), preview, list, read, cancel, delete.

Built per app (`routes(settings)`): the spec a submission may send and the page sizes a list may ask
for are this deployment's limits, part of the OpenAPI document as well as of validation.
"""

# No `from __future__ import annotations`: FastAPI reads these annotations at run time, and some name
# this deployment's limits, locals of routes().
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from sqlalchemy.orm import Session

from app import presenters, schemas
from app.deps import IDEMPOTENCY_KEY, JOB_SUBMISSIONS, CallerDep, JsonCallerDep, idempotency_key
from app.openapi import PROBLEMS, optional_header, with_body_type
from app.replies import reply
from service import jobs as job_service, lifecycle
from service.errors import InvalidInput, NotFound
from service.estimates import estimate
from service.models import Job
from service.principal import Principal
from service.queue import queue_for
from service.repositories import jobs as job_repo
from service.settings import Settings
from wgan.config import TrainSpec
from wgan.cost import step_cost


def owned_job(session: Session, principal: Principal, job_id: str) -> Job:
    job = job_repo.get(session, job_id, principal)
    if job is None:
        raise NotFound(f"no job {job_id}")
    return job


def routes(settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])
    # The spec as this deployment bounds it; to mypy (and in the code below) it is the TrainSpec it extends.
    job_spec = schemas.bounded_spec(settings)

    @with_body_type("spec", job_spec)
    def create_job(caller: JsonCallerDep, spec: TrainSpec, request: Request) -> Response:
        # The key is checked in the job's own transaction; the task goes to the broker off the request's
        # thread, in submission order (service.dispatch).
        admission = caller.admission(JOB_SUBMISSIONS)
        job = lifecycle.submit(caller.rt, admission, spec, idempotency_key(request), caller.rt.tasks.defer)
        location = {"Location": presenters.job_links(job.id).self}
        return reply(presenters.job(job), status.HTTP_202_ACCEPTED, location)

    router.post(
        "",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=schemas.Job,
        responses=PROBLEMS(400, 401, 409, 413, 415, 422, 429),
        summary="Submit a training job",
        openapi_extra=optional_header(
            IDEMPOTENCY_KEY, "Retry-safe creation: the same key and body within 24 h return the first job."
        ),
    )(create_job)

    @with_body_type("spec", job_spec)
    def preview_job(spec: TrainSpec, caller: JsonCallerDep) -> Response:
        with caller.reads() as (session, principal):
            resolved = job_service.resolve_spec(session, principal, spec, settings)
            queue = queue_for(resolved.device)
            cost = step_cost(resolved)
            guess = estimate(session, resolved, queue, cost, settings)
        preview = schemas.JobPreview(
            spec=resolved,
            queue=queue,
            cost=schemas.StepCostOut(
                generator_params=cost.generator_params,
                critic_params=cost.critic_params,
                flops_per_step=cost.flops_per_step,
                updates_per_step=cost.updates_per_step,
            ),
            estimate=schemas.EstimateOut(
                seconds_per_step=guess.seconds_per_step, seconds=guess.seconds, basis=guess.basis, jobs=guess.jobs
            ),
        )
        return reply(preview)

    router.post(
        "/preview",
        response_model=schemas.JobPreview,
        responses=PROBLEMS(400, 401, 413, 415, 422),
        summary="Resolve a spec without submitting it: its defaults, cost and estimated training time",
    )(preview_job)

    @router.get("", response_model=schemas.JobPage, responses=PROBLEMS(401, 422), summary="List jobs, newest first")
    def list_jobs(
        caller: CallerDep,
        status: schemas.JobStatus | None = None,
        limit: Annotated[int, Query(ge=1, le=settings.max_list_limit)] = 50,
        cursor: Annotated[
            str | None, Query(max_length=512, pattern=r"^[A-Za-z0-9_-]*$", description="next_cursor of the last page.")
        ] = None,
    ) -> Response:
        try:
            with caller.reads() as (session, principal):
                jobs, next_cursor = job_repo.page(session, principal, status=status, limit=limit, cursor=cursor)
        except ValueError as exc:
            raise InvalidInput("bad cursor", [(("query", "cursor"), str(exc))]) from exc
        return reply(schemas.JobPage(items=[presenters.job(job) for job in jobs], next_cursor=next_cursor))

    @router.get("/{job_id}", response_model=schemas.Job, responses=PROBLEMS(401, 404), summary="Read a job")
    def get_job(caller: CallerDep, job_id: str) -> Response:
        _, record = caller.read(
            lambda session, key_hash: job_repo.read_with_key(session, key_hash, job_id),
            lambda session, principal: job_repo.read(session, job_id, principal),
        )
        if record is None:
            raise NotFound(f"no job {job_id}")
        return reply(presenters.job(record))

    @router.post(
        "/{job_id}/cancel",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=schemas.Job,
        responses=PROBLEMS(401, 404, 409),
        summary="Cancel a job; a running one stops within seconds and keeps its last checkpoint",
    )
    def cancel_job(caller: CallerDep, job_id: str) -> Response:
        job = lifecycle.request_cancel(caller.rt, caller.principal(), job_id)
        return reply(presenters.job(job), status.HTTP_202_ACCEPTED)

    @router.delete(
        "/{job_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        responses=PROBLEMS(401, 404, 409),
        summary="Delete a job with its metrics and artifacts",
    )
    def delete_job(caller: CallerDep, job_id: str) -> Response:
        lifecycle.delete(caller.rt, caller.principal(), job_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    return router
