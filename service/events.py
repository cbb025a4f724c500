"""Publishing job events to Redis pub/sub for live streaming; the database stays the record."""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

import redis

from service.models import Event
from service.settings import get_settings

log = logging.getLogger(__name__)
PUBLISH_TIMEOUT_SECONDS = 1.0


def channel_prefix() -> str:
    return f"{get_settings().redis_prefix}:events:"


def channel(job_id: str) -> str:
    return f"{channel_prefix()}{job_id}"


def event_message(event: Event) -> dict[str, Any]:
    return {"seq": event.seq, "type": event.type, "data": event.data}


@functools.lru_cache(maxsize=1)
def _client() -> redis.Redis | None:
    url = get_settings().events_url
    if not url:
        return None
    return redis.Redis.from_url(
        url, socket_timeout=PUBLISH_TIMEOUT_SECONDS, socket_connect_timeout=PUBLISH_TIMEOUT_SECONDS
    )


def publish(job_id: str, events: list[Event]) -> None:
    """Announce committed events. Best effort: a stream that misses one reads it from the database."""
    client = _client()
    if client is None or not events:
        return
    try:
        pipe = client.pipeline(transaction=False)
        for event in events:
            pipe.publish(channel(job_id), json.dumps(event_message(event), separators=(",", ":")))
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("could not publish %d events for job %s: %s", len(events), job_id, exc)
