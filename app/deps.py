"""Typed dependencies: the process's Runtime, the caller and its rate limits.

Every route reaches the database, the store and the settings through the Runtime that create_app
was given (request.app.state.runtime), never through a module of its own. Every dependency is async
and does no I/O: a route makes its database work in one thread-pool trip, the endpoint's own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, TypeVar

from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from service.auth import authenticate, stored_hash
from service.db import Executor
from service.errors import Unauthorized
from service.principal import Admission, Principal
from service.runtime import Runtime
from service.settings import Settings


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_runtime(request: Request) -> Runtime:
    # Async, as every dependency here: a plain `def` dependency costs a thread-pool trip of its own, and a
    # request's database work belongs in the one trip its route makes (Caller below).
    return runtime_of(request)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]

_BEARER_DESCRIPTION = "An API key from `wgan-service keys create`."
_bearer = HTTPBearer(auto_error=False, description=_BEARER_DESCRIPTION)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


@dataclass(frozen=True)
class Limit:
    """A per-key, per-minute budget: its name in the 429, and the setting that sizes it."""

    bucket: str
    per_minute: Callable[[Settings], int]


JOB_SUBMISSIONS = Limit("job creation", lambda settings: settings.rate_jobs_per_minute)
SAMPLE_REQUESTS = Limit("sample", lambda settings: settings.rate_samples_per_minute)
UPLOADS = Limit("upload", lambda settings: settings.rate_uploads_per_minute)


AUTH_FAILURES = "failed sign-in"


def admit(rt: Runtime, session: Executor, token: str, client: str | None, limit: Limit | None = None) -> Principal:
    """The caller behind `token`, with one request of `limit` spent: every route's way in.

    An address this process has seen spend its budget of bad keys is refused (429) before its key is
    looked up; a bad key spends one of that budget (in Redis, shared by every API process). A good key
    costs the one indexed read, and no Redis round trip.
    """
    _refuse_known_spent(rt, client)
    return _checked(rt, session, token, client, limit)


def _refuse_known_spent(rt: Runtime, client: str | None) -> None:
    rt.limiter.refuse_if_known_spent(AUTH_FAILURES, client or "unknown", rt.settings.rate_auth_failures_per_minute)


def _checked(rt: Runtime, session: Executor, token: str, client: str | None, limit: Limit | None) -> Principal:
    principal = authenticate(session, token)
    if principal is None:
        failures = rt.settings.rate_auth_failures_per_minute
        rt.limiter.check(AUTH_FAILURES, client or "unknown", failures, remember_spent=True)
        raise Unauthorized("the API key is not valid or has been revoked")
    _spend(rt, principal, limit)
    return principal


def _spend(rt: Runtime, principal: Principal, limit: Limit | None) -> None:
    if limit is not None:
        rt.limiter.check(limit.bucket, principal.owner_id, limit.per_minute(rt.settings))


Found = TypeVar("Found")


def client_address(request: Request) -> str | None:
    return request.client.host if request.client is not None else None


@dataclass(frozen=True)
class Caller:
    """A request's key and address, not yet checked. The route checks them in its own thread-pool trip,
    in the session its reads use: one pooled connection per request, and the key's read is one more
    statement on it.

    Routes that write hand the service `admission(limit)`, which checks the key as the first statement
    of their own transaction, or check it in `principal()` first, a read session given back before
    their transaction takes one: a request never holds two connections.
    """

    rt: Runtime
    token: str
    address: str | None

    @contextmanager
    def reads(self, limit: Limit | None = None) -> Iterator[tuple[Session, Principal]]:
        """An autocommit read session (service.db.Database.reads) and the caller, checked in it."""
        with self.rt.db.reads() as session:
            yield session, admit(self.rt, session, self.token, self.address, limit)

    def principal(self, limit: Limit | None = None) -> Principal:
        with self.reads(limit) as (_, principal):
            return principal

    def read(
        self,
        with_key: Callable[[Connection, str], tuple[Principal, Found] | None],
        alone: Callable[[Connection, Principal], Found | None],
        limit: Limit | None = None,
    ) -> tuple[Principal, Found | None]:
        """The caller, with one request of `limit` spent, and what it may see of something, read in the
        statement that checks its key when all is well.

        `with_key` reads the caller and the thing together by the key's stored hash: one round trip, not
        the key's read and then the thing's. When it finds nothing, the key is checked alone, as every
        route checks it (a bad or revoked key answers 401 and spends a failed sign-in), and `alone` says
        what the caller may see of the thing: None when there is nothing. Both read on an autocommit Core
        connection (service.db.Database.reading).
        """
        rt = self.rt
        _refuse_known_spent(rt, self.address)
        with rt.db.reading() as connection:
            key_hash = self.key_hash
            if key_hash is not None and (found := with_key(connection, key_hash)) is not None:
                _spend(rt, found[0], limit)
                return found
            principal = _checked(rt, connection, self.token, self.address, limit)
            return principal, alone(connection, principal)

    @cached_property
    def key_hash(self) -> str | None:
        """The key's stored hash (service.auth.stored_hash), computed once however many reads ask for it."""
        return stored_hash(self.token)

    def recalled(self, principal: Principal, limit: Limit | None = None) -> Principal:
        """The caller as a read moments ago found them (service.recall), with one request of `limit` spent
        as read() spends it: no I/O where the limiter counts that budget in this process
        (RateLimiter.asks_redis)."""
        _refuse_known_spent(self.rt, self.address)
        _spend(self.rt, principal, limit)
        return principal

    def admission(self, limit: Limit | None = None) -> Admission:
        """The caller, to be checked (one request of `limit` spent) in the session the service's work uses."""
        return _Admission(self, limit)


@dataclass(frozen=True)
class _Admission:
    caller: Caller
    limit: Limit | None

    def admit(self, session: Executor) -> Principal:
        caller = self.caller
        return admit(caller.rt, session, caller.token, caller.address, self.limit)


def _caller(request: Request, rt: Runtime, token: str | None) -> Caller:
    # A missing key needs no lookup: refused here, before the route's own work.
    if not token:
        raise Unauthorized("an API key is required: send 'Authorization: Bearer <key>'")
    return Caller(rt, token, client_address(request))


class _CallerScheme(HTTPBearer):
    """The caller behind the request's bearer key, as one dependency that OpenAPI documents as the bearer
    scheme, and for routes that take a JSON body, that body's media type checked first (415).

    FastAPI solves each dependency of a request in turn, about 70 lines of Python each: the scheme, the
    caller and the media-type check as three cost a submission 300 lines beyond what the anchor app runs
    (bench request-cost, counted with a line tracer). As one, the scheme is still HTTPBearer to OpenAPI.
    """

    def __init__(self, json_body: bool) -> None:
        super().__init__(auto_error=False, scheme_name="HTTPBearer", description=_BEARER_DESCRIPTION)
        self._json_body = json_body

    # Returns the Caller, not the credentials: FastAPI passes on whatever the dependency returns.
    async def __call__(self, request: Request) -> Caller:  # type: ignore[override]
        if self._json_body:
            _require_json(request)
        credentials = await super().__call__(request)
        return _caller(request, runtime_of(request), credentials.credentials if credentials else None)


def _require_json(request: Request) -> None:
    content_type = request.headers.get("content-type")
    if content_type is None:
        raise HTTPException(415, "send the body as application/json")
    # The media type alone, as RFC 9110 §8.3.1 reads it: case-insensitive, parameters after ';' set aside.
    media_type = content_type.split(";", 1)[0].strip().lower()
    kind, _, subtype = media_type.partition("/")
    if kind != "application" or not (subtype == "json" or subtype.endswith("+json")):
        raise HTTPException(415, f"send the body as application/json, not {media_type or 'an empty type'}")


IDEMPOTENCY_KEY = "Idempotency-Key"


def idempotency_key(request: Request) -> str | None:
    """The request's Idempotency-Key header, read by hand (app.openapi.optional_header documents it)."""
    return request.headers.get(IDEMPOTENCY_KEY)


async def stream_caller(
    request: Request,
    credentials: BearerDep,
    access_token: Annotated[
        str | None, Query(description="The API key, for EventSource clients that cannot send headers.")
    ] = None,
) -> Caller:
    """The event stream alone also takes the key as `?access_token=` (EventSource sends no headers).

    Streams check it with `principal()`: a session held for as long as a stream stays open would drain
    the pool once a hundred clients watch.
    """
    return _caller(request, runtime_of(request), credentials.credentials if credentials else access_token)


CallerDep = Annotated[Caller, Depends(_CallerScheme(json_body=False))]
# For routes whose body is JSON: 415 for any other media type, before the key is looked at.
JsonCallerDep = Annotated[Caller, Depends(_CallerScheme(json_body=True))]
StreamCallerDep = Annotated[Caller, Depends(stream_caller)]
