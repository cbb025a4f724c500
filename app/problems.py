"""The one place errors become RFC 9457 problem details (application/problem+json)."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError, TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServiceError,
    Unauthorized,
    Unavailable,
)

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://wgan-service.dev/problems/"

STATUS_OF: dict[type[ServiceError], int] = {
    NotFound: 404,
    Conflict: 409,
    InvalidInput: 422,
    PayloadTooLarge: 413,
    Unauthorized: 401,
    RateLimited: 429,
    Unavailable: 503,
}


# RFC 9110's names where they differ from the older ones Python's HTTPStatus still uses before 3.13.
_RFC_9110_TITLES = {413: "Content Too Large", 422: "Unprocessable Content"}


def title_of(status: int) -> str:
    """The one title a status has in every problem this service sends."""
    return _RFC_9110_TITLES.get(status) or HTTPStatus(status).phrase


def problem_body(status: int, detail: str, instance: str, **extra: Any) -> dict[str, Any]:
    title = title_of(status)
    return {
        "type": PROBLEM_BASE + title.lower().replace(" ", "-"),
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        **extra,
    }


def problem(
    request: Request, status: int, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = problem_body(status, detail, request.url.path, **extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _loc(loc: tuple[Any, ...] | list[Any]) -> list[str | int]:
    return [part if isinstance(part, int) else str(part) for part in loc]


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(error.get("type") == "json_invalid" for error in errors):
        reason = errors[0].get("ctx", {}).get("error", "malformed JSON")
        return problem(request, 400, f"the body is not valid JSON: {reason}")
    return problem(
        request,
        422,
        "the request does not validate; see errors",
        errors=[{"loc": _loc(error["loc"]), "msg": error["msg"]} for error in errors],
    )


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    status = STATUS_OF.get(type(exc), 400)
    extra: dict[str, Any] = {}
    headers: dict[str, str] = {}
    if isinstance(exc, InvalidInput):
        extra["errors"] = exc.errors
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, RateLimited | Unavailable):
        headers["Retry-After"] = str(exc.retry_after)
    return problem(request, status, exc.detail, headers=headers or None, **extra)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return problem(request, exc.status_code, detail, headers=dict(exc.headers or {}) or None)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        # The database went away (a restart): the pool is already renewed, so a retry will work.
        log.warning("database connection lost on %s %s; answered 503", request.method, request.url.path)
        return problem(
            request, 503, "the database connection was reset; retry the request", headers={"Retry-After": "1"}
        )
    if isinstance(exc, OperationalError):
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
        return problem(request, 503, "the database is unavailable; retry later", headers={"Retry-After": "5"})
    return await _unexpected(request, exc)


async def _pool_exhausted(request: Request, exc: Exception) -> JSONResponse:
    # Every pooled connection stayed in use for db_pool_timeout_seconds: the process is saturated, not
    # broken, and the pool never grows past its size (service/db.py), so the answer is "later".
    log.warning("no free database connection for %s %s; answered 503", request.method, request.url.path)
    return problem(request, 503, "the service is busy; retry the request", headers={"Retry-After": "1"})


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(request, 500, "an internal error occurred; it has been logged")


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(PoolTimeout, _pool_exhausted)
    app.add_exception_handler(Exception, _unexpected)
