"""A small Server-Sent Events reader for tests, following the WHATWG parsing rules we rely on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class Event:
    id: str | None
    event: str
    data: Any


def parse(lines: Iterator[str]) -> Iterator[Event]:
    event_id: str | None = None
    kind = "message"
    data: list[str] = []
    for raw in lines:
        line = raw.rstrip("\r")
        if line == "":
            if data:
                yield Event(event_id, kind, json.loads("\n".join(data)))
            kind, data = "message", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            kind = value
        elif field == "id":
            event_id = value


def read_events(
    client: httpx.Client,
    path: str,
    last_event_id: str | None = None,
    limit: int | None = None,
    timeout: float = 60,
    **params: Any,
) -> list[Event]:
    """Read until the server ends the stream (or `limit` events)."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
    events: list[Event] = []
    with client.stream("GET", path, headers=headers, params=params, timeout=timeout) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for event in parse(response.iter_lines()):
            events.append(event)
            if limit is not None and len(events) >= limit:
                break
    return events
