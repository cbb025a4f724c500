"""/api/v1/jobs: create (idempotent), list, read, cancel, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response, status

from app import presenters, schemas
from app.deps import PrincipalDep, ReadSessionDep, SessionDep, SettingsDep, StoreDep, rate_limit
from app.openapi import PROBLEMS, require_json
from service import idempotency
from service import jobs as job_service
from service.artifacts import job_prefix
from service.db import transaction
from service.errors import InvalidInput, NotFound
from service.estimates import estimate
from service.models import Job
from service.principal import Principal
from service.queue import enqueue_training, queue_for
from service.repositories import jobs as job_repo
from service.settings import Settings, get_settings
from wgan.cost import step_cost

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


def _create(
    principal: Principal,
    spec: schemas.JobSpec,
    settings: Settings,
    idempotency_key: str | None,
) -> Job:
    with transaction() as session:
        job = job_service.create_job(session, principal, spec, settings)
        if idempotency_key is not None:
            idempotency.attach(session, principal.owner_id, idempotency_key, job.id)
    enqueue_training(job.id, job.queue)
    return job


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=schemas.Job,
    dependencies=[Depends(require_json), rate_limit("job creation", "rate_jobs_per_minute")],
    responses=PROBLEMS(400, 401, 409, 413, 415, 422, 429),
    summary="Submit a training job",
)
def create_job(
    spec: schemas.JobSpec,
    principal: PrincipalDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(description="Retry-safe creation: the same key and body within 24 h return the first job."),
    ] = None,
) -> schemas.Job:
    if idempotency_key is None:
        job = _create(principal, spec, settings, None)
    else:
        body = spec.model_dump(mode="json", exclude_unset=True)
        job, _ = idempotency.run_once(
            principal.owner_id,
            idempotency_key,
            body,
            settings.idempotency_ttl_seconds,
            lambda: _create(principal, spec, settings, idempotency_key),
        )
    response.headers["Location"] = presenters.job_links(job.id).self
    return presenters.job(job)


@router.post(
    "/preview",
    response_model=schemas.JobPreview,
    dependencies=[Depends(require_json)],
    responses=PROBLEMS(400, 401, 413, 415, 422),
    summary="Resolve a spec without submitting it: its defaults, cost and estimated training time",
)
def preview_job(
    spec: schemas.JobSpec, session: ReadSessionDep, principal: PrincipalDep, settings: SettingsDep
) -> schemas.JobPreview:
    resolved = job_service.resolve_spec(session, principal, spec, settings)
    queue = queue_for(resolved.device)
    cost = step_cost(resolved)
    guess = estimate(session, resolved, queue, cost, settings)
    return schemas.JobPreview(
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


@router.get("", response_model=schemas.JobPage, responses=PROBLEMS(401, 422), summary="List jobs, newest first")
def list_jobs(
    session: ReadSessionDep,
    principal: PrincipalDep,
    status: schemas.JobStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=get_settings().max_list_limit)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> schemas.JobPage:
    try:
        jobs, next_cursor = job_repo.page(session, principal, status=status, limit=limit, cursor=cursor)
    except ValueError as exc:
        raise InvalidInput("bad cursor", [(("query", "cursor"), str(exc))]) from exc
    return schemas.JobPage(items=[presenters.job(job) for job in jobs], next_cursor=next_cursor)


def owned_job(session: ReadSessionDep, principal: PrincipalDep, job_id: str) -> Job:
    job = job_repo.get(session, job_id, principal)
    if job is None:
        raise NotFound(f"no job {job_id}")
    return job


JobDep = Annotated[Job, Depends(owned_job)]


@router.get("/{job_id}", response_model=schemas.Job, responses=PROBLEMS(401, 404), summary="Read a job")
def get_job(job: JobDep) -> schemas.Job:
    return presenters.job(job)


@router.post(
    "/{job_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=schemas.Job,
    responses=PROBLEMS(401, 404, 409),
    summary="Cancel a job; a running one stops within seconds and keeps its last checkpoint",
)
def cancel_job(session: SessionDep, principal: PrincipalDep, job_id: str) -> schemas.Job:
    job = job_repo.get(session, job_id, principal, for_update=True)
    if job is None:
        raise NotFound(f"no job {job_id}")
    job_service.request_cancel(session, job)
    session.commit()
    return presenters.job(job)


@router.delete(
    "/{job_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=PROBLEMS(401, 404, 409),
    summary="Delete a job with its metrics and artifacts",
)
def delete_job(session: SessionDep, principal: PrincipalDep, store: StoreDep, job_id: str) -> Response:
    job = job_repo.get(session, job_id, principal, for_update=True)
    if job is None:
        raise NotFound(f"no job {job_id}")
    job_service.delete_job(session, job)
    session.commit()
    # Files go only once the rows are gone: a failed commit must not leave a job without artifacts.
    store.delete_prefix(job_prefix(job_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
