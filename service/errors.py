"""Typed domain errors; the API maps each to one HTTP status in one place (app/problems.py)."""

from __future__ import annotations

from collections.abc import Sequence


class ServiceError(Exception):
    """Base of the errors a client can cause; `detail` is safe to show them."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(ServiceError):
    pass


class Conflict(ServiceError):
    pass


class InvalidInput(ServiceError):
    """Input that parses but cannot be accepted, with the fields at fault."""

    def __init__(self, detail: str, errors: Sequence[tuple[Sequence[str | int], str]] = ()) -> None:
        super().__init__(detail)
        self.errors = [{"loc": list(loc), "msg": msg} for loc, msg in errors]


class PayloadTooLarge(ServiceError):
    pass


class Unavailable(ServiceError):
    """The work could not be done in the time the service gives it; the client may retry, or ask for less."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Unauthorized(ServiceError):
    pass


class RateLimited(ServiceError):
    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
