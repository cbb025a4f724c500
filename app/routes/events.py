"""Event streams as Server-Sent Events, replayed then live: a job's (/api/v1/jobs/{id}/events) and an
experiment's (/api/v1/experiments/{id}/events, its runs' status changes and checkpoints on one
connection). Both follow the same rules: Last-Event-ID resumes exactly, a stream has a lifetime and a
per-owner cap, and a revoked key's stream ends."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from app.deps import StreamCallerDep
from app.openapi import PROBLEMS
from app.streaming import EventHub
from service.errors import InvalidInput, NotFound, RateLimited
from service.events import stored_message
from service.models import experiment_stream as experiment_channel
from service.principal import Principal
from service.repositories import (
    events as event_repo,
    experiments as experiment_repo,
    jobs as job_repo,
    keys as key_repo,
)
from service.runtime import Runtime

router = APIRouter(tags=["events"])
REPLAY_BATCH = 500
RECONNECT_MS = 1000
STREAMS = "streams"
LEASE_SECONDS = 30  # an open stream renews its slot; a dead process's expire within this
MAX_EVENT_ID_DIGITS = 9  # events.seq is a 32-bit integer


@dataclass(frozen=True)
class Read:
    """One database read of a stream: whether its subject is still there for this key, whether it has
    ended (nothing will follow its last event), and its events after the last one sent."""

    present: bool
    ended: bool
    backlog: list[dict[str, Any]]


GONE = Read(False, True, [])
Reader = Callable[[Runtime, str, Principal, int], Read]


def read_job(rt: Runtime, job_id: str, principal: Principal, after: int) -> Read:
    with rt.db.reads() as session:
        job = job_repo.get(session, job_id, principal)
        if job is None or not key_repo.is_active(session, principal.key_id):
            return GONE
        rows = event_repo.after(session, job_id, after, REPLAY_BATCH)
        return Read(True, job.status.final, [stored_message(row) for row in rows])


def read_experiment(rt: Runtime, experiment_id: str, principal: Principal, after: int) -> Read:
    with rt.db.reads() as session:
        experiment = experiment_repo.get(session, experiment_id, principal)
        if experiment is None or not key_repo.is_active(session, principal.key_id):
            return GONE
        rows = experiment_repo.events_after(session, experiment_id, after, REPLAY_BATCH)
        ended = experiment_repo.unfinished_runs(session, experiment_id) == 0
        return Read(True, ended, [stored_message(row) for row in rows])


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


LastEventId = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        pattern=rf"^[0-9]{{0,{MAX_EVENT_ID_DIGITS}}}$",
        description="The id of the last event received: the stream resumes after it.",
    ),
]
# EventSource cannot send a header on its first connection: a client that has read the history
# (its last_event_id) starts after it with this, and the browser's own Last-Event-ID takes over on reconnects.
StartAfter = Annotated[
    str | None,
    Query(
        alias="last_event_id",
        pattern=rf"^[0-9]{{0,{MAX_EVENT_ID_DIGITS}}}$",
        description="Start after this event id (as Last-Event-ID, which wins when both are sent).",
    ),
]


@dataclass
class Stream:
    """Checked before the response starts, so a missing subject or a bad header is a proper 4xx."""

    rt: Runtime
    principal: Principal
    subject: str  # a job's id, or an experiment's
    channel: str  # where its events are announced (the Event or ExperimentEvent's `stream`)
    read: Reader
    last: int
    backlog: list[dict[str, Any]]
    lease: str

    @classmethod
    def open(
        cls, rt: Runtime, principal: Principal, subject: str, channel: str, read: Reader, last_event_id: str | None
    ) -> Stream:
        last = _last_id(last_event_id)
        first = read(rt, subject, principal, last)
        if not first.present:
            raise NotFound(f"no such {'experiment' if channel != subject else 'job'} {subject}")
        if first.ended and not first.backlog:
            # A client that already has the final event: 204 tells EventSource not to reconnect.
            raise StreamFinished
        limit = rt.settings.max_streams_per_owner
        lease = rt.slots.acquire(STREAMS, principal.owner_id, limit, LEASE_SECONDS)
        if lease is None:
            raise RateLimited(f"this owner already has {limit} event streams open; close one", LEASE_SECONDS)
        return cls(rt, principal, subject, channel, read, last, first.backlog, lease)


def job_stream(
    job_id: str,
    caller: StreamCallerDep,
    last_event_id: LastEventId = None,
    start_after: StartAfter = None,
) -> Stream:
    # One thread-pool trip opens the stream: the key's check and the first read.
    return Stream.open(caller.rt, caller.principal(), job_id, job_id, read_job, last_event_id or start_after)


def experiment_stream(
    experiment_id: str,
    caller: StreamCallerDep,
    last_event_id: LastEventId = None,
    start_after: StartAfter = None,
) -> Stream:
    channel = experiment_channel(experiment_id)
    principal = caller.principal()
    return Stream.open(caller.rt, principal, experiment_id, channel, read_experiment, last_event_id or start_after)


async def follow(request: Request, stream: Stream) -> AsyncIterator[ServerSentEvent]:
    """The stream's backlog, then its live events as announced, re-reading the database on any gap."""
    rt, principal, last, backlog = stream.rt, stream.principal, stream.last, stream.backlog
    hub: EventHub = request.app.state.event_hub
    settings = rt.settings
    poll = settings.sse_poll_seconds
    opened = time.monotonic()
    # Past its lifetime a stream ends and the client reconnects with Last-Event-ID, losing nothing.
    ends = opened + settings.stream_max_seconds
    checked = renewed = opened
    # Subscribe before the next database read, so nothing published in between is missed.
    subscription = hub.subscribe(stream.channel)
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
                await run_in_threadpool(rt.slots.renew, STREAMS, principal.owner_id, stream.lease, LEASE_SECONDS)
                renewed = now
            read = await run_in_threadpool(stream.read, rt, stream.subject, principal, last)
            checked = time.monotonic()
            if not read.present:
                return
            backlog = read.backlog
    finally:
        hub.unsubscribe(subscription)
        # Also when the client has gone and the stream is being cancelled: the slot is freed at once.
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(rt.slots.release, STREAMS, principal.owner_id, stream.lease)


@router.get(
    "/api/v1/jobs/{job_id}/events",
    response_class=EventSourceResponse,
    responses={
        200: {"description": "`metrics`, `status` and `checkpoint` events; ends after a finished job's final status."},
        204: {"description": "The job has finished and the client has every event (Last-Event-ID at the end)."},
        **PROBLEMS(401, 404, 422, 429),
    },
    summary="Live events of a job (SSE); Last-Event-ID resumes exactly where a client left off",
)
async def job_events(
    request: Request, stream: Annotated[Stream, Depends(job_stream)]
) -> AsyncIterator[ServerSentEvent]:
    async for event in follow(request, stream):
        yield event


@router.get(
    "/api/v1/experiments/{experiment_id}/events",
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "`run-status` and `run-checkpoint` events of every run (each names its job_id; a "
            "checkpoint carries the run's summary), then `finished` once every run has ended."
        },
        204: {"description": "The experiment has finished and the client has every event."},
        **PROBLEMS(401, 404, 422, 429),
    },
    summary="Live events of an experiment's runs on one stream (SSE); Last-Event-ID resumes exactly",
    tags=["experiments"],
)
async def experiment_events(
    request: Request, stream: Annotated[Stream, Depends(experiment_stream)]
) -> AsyncIterator[ServerSentEvent]:
    async for event in follow(request, stream):
        yield event
