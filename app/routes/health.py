"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from app import schemas
from app.cached import Cached
from app.replies import reply

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=schemas.Health, summary="The process is up")
async def healthz() -> Response:
    # async: nothing here waits, so nothing goes to the thread pool.
    return reply(schemas.Health(status="ok"))


@router.get(
    "/readyz",
    response_model=schemas.Readiness,
    responses={503: {"model": schemas.Readiness, "description": "The database or the broker is unreachable."}},
    summary="The database and the broker are reachable",
)
async def readyz(request: Request) -> JSONResponse:
    readiness: Cached[dict[str, str]] = request.app.state.readiness
    checks = await run_in_threadpool(readiness.get)
    ready = all(value == "ok" for value in checks.values())
    body = schemas.Readiness(status="ready" if ready else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
