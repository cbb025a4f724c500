"""/api/v1/experiments: a grid of runs as one resource, each run an ordinary job; ranked and compared.

Built per app (`routes(settings)`): each run's spec is validated against this deployment's bounded
job spec, and the run count against its cap. The experiment's event stream is in app.routes.events.
"""

# No `from __future__ import annotations`: FastAPI reads these annotations at run time, and some name
# this deployment's limits, locals of routes().
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import ValidationError

from app import presenters, schemas
from app.deps import IDEMPOTENCY_KEY, JOB_SUBMISSIONS, CallerDep, JsonCallerDep, idempotency_key
from app.openapi import PROBLEMS, optional_header
from app.replies import reply
from service import experiments, lifecycle
from service.errors import InvalidInput, NotFound
from service.lifecycle import PlannedRun
from service.repositories import experiments as experiment_repo
from service.settings import Settings

SORT_DOC = "best, final, status or created; '-' first for descending (best and final: lowest first)."


def _plan(body: schemas.ExperimentCreate, job_spec: type[Any], max_runs: int) -> list[PlannedRun]:
    """Each run's overrides applied to the base and validated as a job, or a 422 naming the run and field."""
    planned = []
    for index, overrides in enumerate(experiments.expand(body.grid, body.runs, max_runs)):
        try:
            spec = job_spec.model_validate(experiments.apply(body.base, overrides))
        except ValidationError as exc:
            label = experiments.label(overrides)
            raise InvalidInput(
                f"run {index} ({label}) is not a valid job",
                [(("body", "runs", index, *error["loc"]), error["msg"]) for error in exc.errors()],
            ) from exc
        planned.append(PlannedRun(overrides, spec))
    return planned


def routes(settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/api/v1/experiments", tags=["experiments"])
    job_spec = schemas.bounded_spec(settings)

    @router.post(
        "",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=schemas.Experiment,
        responses=PROBLEMS(400, 401, 409, 413, 415, 422, 429),
        summary="Submit an experiment: a grid (or list) of runs, each an ordinary job",
        openapi_extra=optional_header(
            IDEMPOTENCY_KEY, "Retry-safe creation: the same key and body within 24 h return the first experiment."
        ),
    )
    def create_experiment(caller: JsonCallerDep, body: schemas.ExperimentCreate, request: Request) -> Response:
        principal = caller.principal(JOB_SUBMISSIONS)
        planned = _plan(body, job_spec, settings.max_experiment_runs)
        rt = caller.rt
        made = lifecycle.submit_experiment(
            rt,
            principal,
            body.name,
            body.base,
            body.grid,
            planned,
            idempotency_key(request),
            body.model_dump(mode="json", exclude_unset=True),
            caller.rt.tasks.defer,
        )
        location = {"Location": presenters.experiment_links(made.id).self}
        with rt.db.reads() as session:
            shown = presenters.experiment(made, experiment_repo.runs(session, made.id))
        return reply(shown, status.HTTP_202_ACCEPTED, location)

    @router.get(
        "",
        response_model=schemas.ExperimentPage,
        responses=PROBLEMS(401, 422),
        summary="List experiments, newest first",
    )
    def list_experiments(
        caller: CallerDep,
        limit: Annotated[int, Query(ge=1, le=settings.max_list_limit)] = 20,
        cursor: Annotated[
            str | None, Query(max_length=512, pattern=r"^[A-Za-z0-9_-]*$", description="next_cursor of the last page.")
        ] = None,
    ) -> Response:
        with caller.reads() as (session, principal):
            try:
                rows, next_cursor = experiment_repo.page(session, principal, limit=limit, cursor=cursor)
            except ValueError as exc:
                raise InvalidInput("bad cursor", [(("query", "cursor"), str(exc))]) from exc
            runs = experiment_repo.runs_of(session, [row.id for row in rows])
            items = [presenters.experiment(row, runs[row.id]) for row in rows]
        return reply(schemas.ExperimentPage(items=items, next_cursor=next_cursor))

    @router.get(
        "/{experiment_id}",
        response_model=schemas.Experiment,
        responses=PROBLEMS(401, 404, 422),
        summary="Read an experiment: its runs ranked, and per grid point the mean ± sd over seeds",
    )
    def get_experiment(
        caller: CallerDep,
        experiment_id: str,
        sort: Annotated[str | None, Query(max_length=16, description=SORT_DOC)] = None,
    ) -> Response:
        with caller.reads() as (session, principal):
            row = experiment_repo.get(session, experiment_id, principal)
            if row is None:
                raise NotFound(f"no experiment {experiment_id}")
            return reply(presenters.experiment(row, experiment_repo.runs(session, row.id), sort))

    @router.post(
        "/{experiment_id}/cancel",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=schemas.Experiment,
        responses=PROBLEMS(401, 404, 409),
        summary="Cancel every unfinished run of an experiment",
    )
    def cancel_experiment(caller: CallerDep, experiment_id: str) -> Response:
        row = lifecycle.cancel_experiment(caller.rt, caller.principal(), experiment_id)
        with caller.rt.db.reads() as session:
            return reply(presenters.experiment(row, experiment_repo.runs(session, row.id)), status.HTTP_202_ACCEPTED)

    @router.delete(
        "/{experiment_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        responses=PROBLEMS(401, 404, 409),
        summary="Delete an experiment with its runs, once none of them is still to end",
    )
    def delete_experiment(caller: CallerDep, experiment_id: str) -> Response:
        lifecycle.delete_experiment(caller.rt, caller.principal(), experiment_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    return router
