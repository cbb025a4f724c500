"""/api/v1/jobs/{id}/events: the job's events as Server-Sent Events, replayed then live."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from app.deps import RuntimeDep, StreamPrincipalDep
from app.openapi import PROBLEMS
from app.streaming import EventHub
from service.errors import InvalidInput, NotFound
from service.events import message
from service.principal import Principal
from service.repositories import events as event_repo
from service.repositories import jobs as job_repo
from service.runtime import Runtime
from service.states import JobState

router = APIRouter(prefix="/api/v1/jobs", tags=["events"])
REPLAY_BATCH = 500
RECONNECT_MS = 1000


def _read(rt: Runtime, job_id: str, principal: Principal, after: int) -> tuple[JobState | None, list[dict[str, Any]]]:
    """(the job's state, or None if it is gone; its events after `after`) in one short session."""
    with rt.db.reads() as session:
        job = job_repo.get(session, job_id, principal)
        if job is None:
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
    if not value.isdigit():
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
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    ) -> None:
        self.last = _last_id(last_event_id)
        state, self.backlog = _read(rt, job_id, principal, self.last)
        if state is None:
            raise NotFound(f"no job {job_id}")
        if state.final and not self.backlog:
            # A client that already has the final event: 204 tells EventSource not to reconnect.
            raise StreamFinished
        self.principal = principal
        self.rt = rt


@router.get(
    "/{job_id}/events",
    response_class=EventSourceResponse,
    responses={
        200: {"description": "`metrics`, `status` and `checkpoint` events; ends after a finished job's final status."},
        204: {"description": "The job has finished and the client has every event (Last-Event-ID at the end)."},
        **PROBLEMS(401, 404, 422),
    },
    summary="Live events of a job (SSE); Last-Event-ID resumes exactly where a client left off",
)
async def job_events(
    request: Request, job_id: str, start: Annotated[StreamStart, Depends()]
) -> AsyncIterator[ServerSentEvent]:
    last, backlog, principal, rt = start.last, start.backlog, start.principal, start.rt
    hub: EventHub = request.app.state.event_hub
    poll = rt.settings.sse_poll_seconds
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
                # Live: take announced events in order; any gap, timeout or resync re-reads the database.
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
            state, backlog = await run_in_threadpool(_read, rt, job_id, principal, last)
            if state is None:
                return
    finally:
        hub.unsubscribe(subscription)
