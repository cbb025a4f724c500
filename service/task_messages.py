"""A Celery task message as kombu's Redis transport stores it: one LPUSH, built without Celery's publisher.

`Celery.send_task` costs about 1 ms of CPU per task (bench request-cost): a new redis-py client per
publish, a queue declaration checked each time, and the message assembled through several layers. The API
sends a task per submission, so that cost lands on every POST. The message itself is small and its format
is public, written down so that other languages can send Celery tasks:

- the task message, Celery's protocol version 2 (https://docs.celeryq.dev/en/stable/internals/protocol.html):
  headers naming the task and its id, a body of `[args, kwargs, embed]`;
- the envelope kombu's virtual transports put around it (kombu.transport.virtual.Channel: `prepare_message`
  and `basic_publish`): the body base64-encoded, a delivery tag, the routing in `delivery_info`; the Redis
  transport LPUSHes its JSON onto the queue's list, a key of the transport's `global_keyprefix` and the
  queue's name for the default priority.

`tests/service/test_task_messages.py` holds this rendering to what `send_task` writes on the same broker,
field by field, so a Celery or kombu release that changes the format fails there, not in production.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

PROTOCOL_CONTENT_TYPE = "application/json"
# A message at the default priority goes on the queue's own list (kombu's Redis transport `_q_for_pri`).
DEFAULT_PRIORITY = 0
# Kept across a broker restart where the broker keeps anything (AMQP's "persistent"; Celery's default).
PERSISTENT = 2
# No callbacks, errbacks, chain or chord: a plain task (protocol v2's `embed`).
EMBED: dict[str, None] = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


def queue_key(prefix: str, queue: str) -> str:
    """The Redis list a task for `queue` goes on, under the transport's `global_keyprefix`."""
    return f"{prefix}{queue}"


def task_message(task: str, args: list[Any], queue: str, origin: str, reply_to: str) -> str:
    """The JSON the Redis transport holds for one `task(*args)` routed to `queue` (the default exchange)."""
    task_id = str(uuid.uuid4())
    headers: dict[str, Any] = {
        "lang": "py",
        "task": task,
        "id": task_id,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [None, None],
        "root_id": task_id,
        "parent_id": None,
        "argsrepr": repr(args),
        "kwargsrepr": "{}",
        "origin": origin,
        "ignore_result": None,
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
    }
    body = json.dumps([args, {}, EMBED]).encode()
    return json.dumps(
        {
            "body": base64.b64encode(body).decode(),
            "content-encoding": "utf-8",
            "content-type": PROTOCOL_CONTENT_TYPE,
            "headers": headers,
            "properties": {
                "correlation_id": task_id,
                "reply_to": reply_to,
                "delivery_mode": PERSISTENT,
                "delivery_info": {"exchange": "", "routing_key": queue},
                "priority": DEFAULT_PRIORITY,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
    )
