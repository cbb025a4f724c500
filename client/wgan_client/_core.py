"""What the sync and async clients share, free of I/O: their options, a request described as data (Call),
paged listings (Pages), and when to retry (RetryPolicy). Each client only sends and sleeps."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx

from wgan_client.errors import ConnectionFailed, problem_error, retry_after

T = TypeVar("T")
Cursor = str | int | None

DEFAULT_URL = "http://127.0.0.1:8000"
USER_AGENT = "wgan-client/0.1"
RETRIED_STATUSES = frozenset({429, 503})
FIRST_BACKOFF_SECONDS = 0.5


@dataclass(frozen=True)
class Options:
    """A client's settings; the API key and URL default from WGAN_API_KEY and WGAN_URL."""

    base_url: str
    api_key: str | None
    timeout: float
    max_retries: int
    max_retry_wait: float
    max_reconnects: int

    @classmethod
    def resolve(
        cls,
        base_url: str | None,
        api_key: str | None,
        timeout: float,
        max_retries: int,
        max_retry_wait: float,
        max_reconnects: int,
    ) -> Options:
        return cls(
            base_url=(base_url or os.environ.get("WGAN_URL") or DEFAULT_URL).rstrip("/"),
            api_key=api_key if api_key is not None else os.environ.get("WGAN_API_KEY"),
            timeout=timeout,
            max_retries=max_retries,
            max_retry_wait=max_retry_wait,
            max_reconnects=max_reconnects,
        )

    def http_settings(self) -> dict[str, Any]:
        """What httpx.Client and httpx.AsyncClient are both made with."""
        headers = {"User-Agent": USER_AGENT}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return {"base_url": self.base_url, "headers": headers, "timeout": self.timeout}

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(self.max_retries, self.max_retry_wait)


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request of the API and how its answer is read."""

    method: str
    path: str
    read: Callable[[httpx.Response], T]
    params: Mapping[str, Any] | None = None
    json: Any = None
    files: Mapping[str, tuple[str, bytes, str]] | None = None
    data: Mapping[str, str] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    # Whether it may be sent again after a connection broke mid-request, when the service may or may not
    # have acted on it: reads, and creations made safe by an Idempotency-Key.
    replayable: bool = True
    timeout: float | None = None

    def request(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        return http.build_request(
            self.method,
            self.path,
            params=self.params,
            json=self.json,
            files=self.files,
            data=self.data,
            headers=self.headers,
            timeout=self.timeout if self.timeout is not None else httpx.USE_CLIENT_DEFAULT,
        )


@dataclass(frozen=True)
class Pages(Generic[T]):
    """A paged listing: the call for the page after `cursor` (None: the first), answering its items and
    the next cursor (None after the last page)."""

    page: Callable[[Cursor], Call[tuple[Sequence[T], Cursor]]]


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed attempt is tried again, and after how long. 429 and 503 are answers the service gives
    before acting, so any request may be resent after them; a broken connection only where resending is
    safe, or where the request never left (the connection could not be made)."""

    max_retries: int
    max_wait: float

    def settle(
        self, call: Call[Any], attempt: int, outcome: httpx.Response | httpx.TransportError
    ) -> httpx.Response | float:
        """What an attempt came to: the response to keep, or the seconds to wait before the next attempt.
        Raises the typed error when the outcome is a failure that stands."""
        if isinstance(outcome, httpx.TransportError):
            wait = self.after_error(outcome, attempt, call.replayable)
            if wait is None:
                raise ConnectionFailed(f"{call.method} {call.path}: {outcome!r}") from outcome
            return wait
        wait = self.after_response(outcome, attempt)
        return checked(outcome) if wait is None else wait

    def after_response(self, response: httpx.Response, attempt: int) -> float | None:
        if response.status_code not in RETRIED_STATUSES or attempt >= self.max_retries:
            return None
        asked = retry_after(response.headers.get("Retry-After"))
        wait = self.backoff(attempt) if asked is None else asked
        # Longer than the caller lets us wait: give up now with the error (it carries retry_after), rather
        # than come back early and be refused again.
        return wait if wait <= self.max_wait else None

    def after_error(self, error: httpx.TransportError, attempt: int, replayable: bool) -> float | None:
        if attempt >= self.max_retries:
            return None
        if not (replayable or isinstance(error, httpx.ConnectError | httpx.ConnectTimeout)):
            return None
        return self.backoff(attempt)

    def backoff(self, attempt: int) -> float:
        # Jittered, so clients refused together do not all come back at the same moment.
        return min(self.max_wait, FIRST_BACKOFF_SECONDS * 2.0**attempt) * random.uniform(0.5, 1.0)


def checked(response: httpx.Response) -> httpx.Response:
    """The response, or its problem as a typed error."""
    if response.is_error:
        raise problem_error(response)
    return response
