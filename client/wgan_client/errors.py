"""The errors the client raises: one base, and a class per kind of problem the service answers with."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx


class WganError(Exception):
    """Anything the client raises on purpose."""


class ConnectionFailed(WganError):
    """The service could not be reached, or the connection broke, and retrying did not help (or was not safe)."""


class StreamBroken(ConnectionFailed):
    """An event stream kept dropping: reconnecting from the last event id failed too often in a row."""


class WaitTimeout(WganError, TimeoutError):
    """wait() ran out of time before the job (or experiment) ended."""


class ProblemError(WganError):
    """The service answered with an error: its RFC 9457 problem details, field by field."""

    def __init__(
        self,
        status: int,
        type: str,
        title: str,
        detail: str,
        errors: list[dict[str, Any]] | None = None,
        instance: str | None = None,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.errors = errors
        self.instance = instance


class Unauthorized(ProblemError):
    """401: no API key, or a bad or revoked one."""


class NotFound(ProblemError):
    """404: no such resource, or it belongs to another owner."""


class Conflict(ProblemError):
    """409: the resource is in the wrong state for this (or the same Idempotency-Key is still in flight)."""


class ValidationFailed(ProblemError):
    """422: the request does not validate; `errors` names each field (`loc`) and why (`msg`)."""


class _RetryLater(ProblemError):
    def __init__(self, *args: Any, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Seconds the service asked for (Retry-After), when it did.
        self.retry_after = retry_after


class RateLimited(_RetryLater):
    """429: too many requests; retry_after says when to try again."""


class Unavailable(_RetryLater):
    """503: a dependency is down or the work took too long; retry_after says when to try again."""


_BY_STATUS: dict[int, type[ProblemError]] = {
    401: Unauthorized,
    404: NotFound,
    409: Conflict,
    422: ValidationFailed,
    429: RateLimited,
    503: Unavailable,
}


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After in seconds: it may be a number of seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def problem_error(response: httpx.Response) -> ProblemError:
    """The error for an error response, built from its problem details (or, from a proxy that sends
    none, from its status line and text)."""
    status = response.status_code
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        body = {}
    errors = body.get("errors")
    fields: dict[str, Any] = {
        "status": status,
        "type": str(body.get("type", "about:blank")),
        "title": str(body.get("title", response.reason_phrase or "error")),
        "detail": str(body.get("detail", response.text[:500])),
        "errors": errors if isinstance(errors, list) else None,
        "instance": body.get("instance"),
    }
    kind = _BY_STATUS.get(status, ProblemError)
    if issubclass(kind, _RetryLater):
        return kind(**fields, retry_after=retry_after(response.headers.get("Retry-After")))
    return kind(**fields)
