"""Announcing committed job events on Redis pub/sub for live streams; the database stays the record."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

import redis

from service.json_text import compact
from service.models import Event, ExperimentEvent
from service.records import EventType, is_final_status
from service.repositories.events import StoredEvent
from service.settings import Settings

log = logging.getLogger(__name__)
PUBLISH_TIMEOUT_SECONDS = 1.0
# What one event's announcement is: the channel of its stream and its payload (encode).
Announcement = tuple[str, str]


def channel_prefix(settings: Settings) -> str:
    return f"{settings.redis_prefix}:events:"


def message(seq: int, kind: str, data: Any) -> dict[str, Any]:
    """An event as streams handle it: its data already JSON-encoded once, for every client to reuse.
    `final` marks the last event a stream will ever have: a job's final status, an experiment's end."""
    return _message(seq, kind, compact(data), lambda: data)


def stored_message(event: StoredEvent) -> dict[str, Any]:
    """A replayed event, its stored JSON sent as it is; only a status event's is read (is it the last?)."""
    return _message(event.seq, event.type, event.raw, lambda: json.loads(event.raw))


def _message(seq: int, kind: str, raw: str, data: Callable[[], Any]) -> dict[str, Any]:
    final = (kind == EventType.STATUS and is_final_status(data())) or kind == EventType.FINISHED
    return {"seq": seq, "type": kind, "final": final, "raw": raw}


def encode(event: Event | ExperimentEvent) -> str:
    """The pub/sub payload: a small JSON header line, then the data's JSON, passed on unparsed."""
    item = message(event.seq, event.type, event.data)
    header = json.dumps({"seq": item["seq"], "type": item["type"], "final": item["final"]})
    return f"{header}\n{item['raw']}"


def decode(payload: str) -> dict[str, Any]:
    header, _, raw = payload.partition("\n")
    item: dict[str, Any] = json.loads(header)
    if not isinstance(item.get("seq"), int) or not raw:
        raise ValueError("not an event payload")
    item["raw"] = raw
    return item


class EventPublisher:
    """Announces events once their transaction has committed (service.lifecycle calls it after each
    commit, never before: a stream must not see what may still roll back). Best effort: a stream that
    misses an announcement reads the event from the database."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.prefix = prefix
        self._client = (
            redis.Redis.from_url(
                url, socket_timeout=PUBLISH_TIMEOUT_SECONDS, socket_connect_timeout=PUBLISH_TIMEOUT_SECONDS
            )
            if url
            else None
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> EventPublisher:
        return cls(settings.events_url, channel_prefix(settings))

    def channel(self, stream: str) -> str:
        return f"{self.prefix}{stream}"

    def announcements(self, events: Sequence[Event | ExperimentEvent]) -> list[Announcement]:
        return [(self.channel(event.stream), encode(event)) for event in events]

    def publish(self, events: Sequence[Event | ExperimentEvent]) -> None:
        self.announce(self.announcements(events))

    def announce(self, announcements: Sequence[Announcement]) -> None:
        if self._client is None or not announcements:
            return
        try:
            pipe = self._client.pipeline(transaction=False)
            for channel, payload in announcements:
                pipe.publish(channel, payload)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("could not publish %d events: %s", len(announcements), exc)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
