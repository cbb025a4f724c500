"""/api/v1/jobs/{id}/events: the job's events as Server-Sent Events, replayed then live."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from app.deps import RuntimeDep, StreamPrincipalDep
from app.openapi import PROBLEMS
from app.streaming import EventHub
from service.errors import InvalidInput, NotFound, RateLimited
from service.events import message
from service.principal import Principal
from service.repositories import events as event_repo
from service.repositories import jobs as job_repo
from service.repositories import keys as key_repo
from service.runtime import Runtime
from service.states import JobState

router = APIRouter(prefix="/api/v1/jobs", tags=["events"])
REPLAY_BATCH = 500
RECONNECT_MS = 1000
STREAMS = "streams"
LEASE_SECONDS = 30  # an open stream renews its slot; a dead process's expire within this
MAX_EVENT_ID_DIGITS = 9  # events.seq is a 32-bit integer


def _read(rt: Runtime, job_id: str, principal: Principal, after: int) -> tuple[JobState | None, list[dict[str, Any]]]:
    """(the job's state, or None if it is gone or the key revoked; its events after `after`) in one short
    session."""
    with rt.db.reads() as session:
        job = job_repo.get(session, job_id, principal)
        if job is None or not key_repo.is_active(session, principal.key_id):
            return None, []
        rows = event_repo.after(session, job_id, after, REPLAY_BATCH)
        return job.status, [message(row.seq, row.type, row.data) for row in rows]


def _sse(item: dict[str, Any], first: bool) -> ServerSentEvent:
    # raw_data: the JSON was encoded once when published (or read), not again for every client.
    return ServerSentEvent(
        id=str(item["seq"]), event=item["type"], raw_data=item["raw"], retry=RECONNECT_MS if first else None
    )


def _last_id(value: str | None) -> int:
    if value is None or value == "":
        return 0
    # ASCII digits only ("²".isdigit() is true, and int() refuses it), and no more than an event number holds.
    if not (value.isascii() and value.isdigit() and len(value) <= MAX_EVENT_ID_DIGITS):
        raise InvalidInput("bad Last-Event-ID", [(("header", "Last-Event-ID"), "an event id this stream sent")])
    return int(value)


class StreamFinished(Exception):
    """The stream has nothing more to send, ever (answered 204 No Content)."""


async def stream_finished(_request: Request, _exc: Exception) -> Response:
    return Response(status_code=204)


class StreamStart:
    """Checked before the response starts, so a missing job or a bad header is a proper 4xx."""

    def __init__(
        self,
        rt: RuntimeDep,
        job_id: str,
        principal: StreamPrincipalDep,
        last_event_id: Annotated[
            str | None,
            Header(
                alias="Last-Event-ID",
                pattern=rf"^[0-9]{{0,{MAX_EVENT_ID_DIGITS}}}$",
                description="The id of the last event received: the stream resumes after it.",
            ),
        ] = None,
    ) -> None:
        self.last = _last_id(last_event_id)
        state, self.backlog = _read(rt, job_id, principal, self.last)
        if state is None:
            raise NotFound(f"no job {job_id}")
        if state.final and not self.backlog:
            # A client that already has the final event: 204 tells EventSource not to reconnect.
            raise StreamFinished
        limit = rt.settings.max_streams_per_owner
        lease = rt.slots.acquire(STREAMS, principal.owner_id, limit, LEASE_SECONDS)
        if lease is None:
            raise RateLimited(f"this owner already has {limit} event streams open; close one", LEASE_SECONDS)
        self.principal, self.rt, self.lease = principal, rt, lease


@router.get(
    "/{job_id}/events",
    response_class=EventSourceResponse,
    responses={
        200: {"description": "`metrics`, `status` and `checkpoint` events; ends after a finished job's final status."},
        204: {"description": "The job has finished and the client has every event (Last-Event-ID at the end)."},
        **PROBLEMS(401, 404, 422, 429),
    },
    summary="Live events of a job (SSE); Last-Event-ID resumes exactly where a client left off",
)
async def job_events(
    request: Request, job_id: str, start: Annotated[StreamStart, Depends()]
) -> AsyncIterator[ServerSentEvent]:
    last, backlog, principal, rt = start.last, start.backlog, start.principal, start.rt
    hub: EventHub = request.app.state.event_hub
    settings = rt.settings
    poll = settings.sse_poll_seconds
    opened = time.monotonic()
    # Past its lifetime a stream ends and the client reconnects with Last-Event-ID, losing nothing.
    ends = opened + settings.stream_max_seconds
    checked = renewed = opened
    # Subscribe before the next database read, so nothing published in between is missed.
    subscription = hub.subscribe(job_id)
    first = True
    try:
        while True:
            for item in backlog:
                yield _sse(item, first)
                first = False
                last = item["seq"]
                if item["final"]:
                    return
            if len(backlog) < REPLAY_BATCH:
                # Live: take announced events in order; any gap, timeout or resync re-reads the database,
                # and so does the key's re-check (a revoked key's stream ends there).
                while (live := await subscription.next(poll)) is not None:
                    if live["seq"] <= last:
                        continue
                    if live["seq"] != last + 1:
                        break
                    yield _sse(live, first)
                    first = False
                    last = live["seq"]
                    if live["final"]:
                        return
                    if time.monotonic() > min(checked + settings.stream_recheck_seconds, ends):
                        break
            now = time.monotonic()
            if now > ends:
                return
            if now - renewed > LEASE_SECONDS / 3:
                await run_in_threadpool(rt.slots.renew, STREAMS, principal.owner_id, start.lease, LEASE_SECONDS)
                renewed = now
            state, backlog = await run_in_threadpool(_read, rt, job_id, principal, last)
            checked = time.monotonic()
            if state is None:
                return
    finally:
        hub.unsubscribe(subscription)
        # Also when the client has gone and the stream is being cancelled: the slot is freed at once.
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(rt.slots.release, STREAMS, principal.owner_id, start.lease)
