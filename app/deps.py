"""Typed dependencies: the process's Runtime, the request's session, the caller and its rate limits.

Every route reaches the database, the store and the settings through the Runtime that create_app
was given (request.app.state.runtime), never through a module of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from service.artifacts import ArtifactStore
from service.auth import authenticate
from service.errors import Unauthorized
from service.principal import Principal
from service.runtime import Runtime
from service.settings import Settings


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_settings(rt: RuntimeDep) -> Settings:
    return rt.settings


def get_store(rt: RuntimeDep) -> ArtifactStore:
    return rt.store


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[ArtifactStore, Depends(get_store)]


def get_read_session(rt: RuntimeDep) -> Iterator[Session]:
    # Autocommit reads (service.db.Database.reads); writes go through service.lifecycle's transactions.
    with rt.db.reads() as session:
        yield session


ReadSessionDep = Annotated[Session, Depends(get_read_session)]

_bearer = HTTPBearer(auto_error=False, description="An API key from `wgan-service keys create`.")
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


def admit(
    rt: Runtime, session: Session, token: str | None, client: str | None, limit: Limit | None = None
) -> Principal:
    """The caller behind `token`, with one request of `limit` spent: every route's way in.

    An address that has sent too many bad keys is refused (429) before its key is looked up. Routes take
    this as dependencies (PrincipalDep, rate_limit); the sampling route calls it directly, in the one
    thread-pool trip it makes for the whole request.
    """
    if not token:
        raise Unauthorized("an API key is required: send 'Authorization: Bearer <key>'")
    failures = rt.settings.rate_auth_failures_per_minute
    address = client or "unknown"
    rt.limiter.ensure_room(AUTH_FAILURES, address, failures)
    principal = authenticate(session, token)
    if principal is None:
        rt.limiter.check(AUTH_FAILURES, address, failures)
        raise Unauthorized("the API key is not valid or has been revoked")
    if limit is not None:
        spend(rt, principal, limit)
    return principal


def spend(rt: Runtime, principal: Principal, limit: Limit) -> None:
    """One request of the owner's budget `limit` (all its keys together); RateLimited (429) once spent."""
    rt.limiter.check(limit.bucket, principal.owner_id, limit.per_minute(rt.settings))


def client_address(request: Request) -> str | None:
    return request.client.host if request.client is not None else None


def current_principal(request: Request, rt: RuntimeDep, session: ReadSessionDep, credentials: BearerDep) -> Principal:
    # An autocommit read: routes go on to slow work (parsing an upload, sending to the broker, a
    # forward pass), and a transaction left open across it would sit idle in transaction.
    return admit(rt, session, credentials.credentials if credentials else None, client_address(request))


def stream_principal(
    request: Request,
    rt: RuntimeDep,
    credentials: BearerDep,
    access_token: Annotated[
        str | None, Query(description="The API key, for EventSource clients that cannot send headers.")
    ] = None,
) -> Principal:
    """The event stream alone also takes the key as `?access_token=` (EventSource sends no headers).

    Its own short session: a request-scoped one would hold a pooled connection for as long as the
    stream stays open, and a hundred watchers would drain the pool.
    """
    with rt.db.reads() as session:
        return admit(rt, session, credentials.credentials if credentials else access_token, client_address(request))


PrincipalDep = Annotated[Principal, Depends(current_principal)]
StreamPrincipalDep = Annotated[Principal, Depends(stream_principal)]


def rate_limit(limit: Limit) -> Any:
    """A dependency that spends one request of the caller's budget `limit`."""

    def dependency(rt: RuntimeDep, principal: PrincipalDep) -> None:
        spend(rt, principal, limit)

    return Depends(dependency)
