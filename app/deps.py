"""Typed dependencies: the request's session, the caller, settings, the artifact store."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from service import ratelimit
from service.artifacts import ArtifactStore
from service.auth import authenticate
from service.db import read_session_factory, session_factory
from service.errors import Unauthorized
from service.principal import Principal
from service.settings import Settings, get_settings


def get_session() -> Iterator[Session]:
    # The route commits once, at its end; anything left uncommitted is rolled back here.
    with session_factory()() as session:
        yield session


def get_read_session() -> Iterator[Session]:
    with read_session_factory()() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
ReadSessionDep = Annotated[Session, Depends(get_read_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

_bearer = HTTPBearer(auto_error=False, description="An API key from `wgan-service keys create`.")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def resolve_principal(session: Session, token: str | None) -> Principal:
    if not token:
        raise Unauthorized("an API key is required: send 'Authorization: Bearer <key>'")
    principal = authenticate(session, token)
    if principal is None:
        raise Unauthorized("the API key is not valid or has been revoked")
    return principal


def current_principal(session: ReadSessionDep, credentials: BearerDep) -> Principal:
    # An autocommit read: routes go on to slow work (parsing an upload, sending to the broker, a
    # forward pass), and a transaction left open across it would sit idle in transaction.
    return resolve_principal(session, credentials.credentials if credentials else None)


def stream_principal(
    credentials: BearerDep,
    access_token: Annotated[
        str | None, Query(description="The API key, for EventSource clients that cannot send headers.")
    ] = None,
) -> Principal:
    """The event stream alone also takes the key as `?access_token=` (EventSource sends no headers).

    Its own short session: a request-scoped one would hold a pooled connection for as long as the
    stream stays open, and a hundred watchers would drain the pool.
    """
    with read_session_factory()() as session:
        return resolve_principal(session, credentials.credentials if credentials else access_token)


PrincipalDep = Annotated[Principal, Depends(current_principal)]
StreamPrincipalDep = Annotated[Principal, Depends(stream_principal)]


def get_store(request: Request) -> ArtifactStore:
    store: ArtifactStore = request.app.state.store
    return store


StoreDep = Annotated[ArtifactStore, Depends(get_store)]


def rate_limit(bucket: str, per_minute_setting: str) -> Any:
    """A dependency that spends one request of the caller's per-minute budget for `bucket`."""

    def spend(principal: PrincipalDep, settings: SettingsDep) -> None:
        ratelimit.check(bucket, principal.key_id, getattr(settings, per_minute_setting))

    return Depends(spend)
