"""Publishing job events to Redis pub/sub for live streaming; the database stays the record."""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

import redis

from service.models import FINAL_STATUSES, Event
from service.settings import get_settings

log = logging.getLogger(__name__)
PUBLISH_TIMEOUT_SECONDS = 1.0


def channel_prefix() -> str:
    return f"{get_settings().redis_prefix}:events:"


def channel(job_id: str) -> str:
    return f"{channel_prefix()}{job_id}"


def message(seq: int, kind: str, data: Any) -> dict[str, Any]:
    """An event as streams handle it: its data already JSON-encoded once, for every client to reuse."""
    final = kind == "status" and isinstance(data, dict) and data.get("status") in FINAL_STATUSES
    return {"seq": seq, "type": kind, "final": final, "raw": json.dumps(data, separators=(",", ":"))}


def encode(event: Event) -> str:
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
            pipe.publish(channel(job_id), encode(event))
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("could not publish %d events for job %s: %s", len(events), job_id, exc)
