"""Logging for API and worker processes: plain lines, or one JSON object per line."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from service.settings import Settings

STANDARD_ATTRS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

# The job a worker process is training. Process-wide on purpose: a worker trains one job at a time
# (solo pool), and the lines of its helper threads and of Celery itself belong to that job too.
_current_job: dict[str, str | None] = {"id": None}


@contextmanager
def job_logging(job_id: str) -> Iterator[None]:
    """Every log line of this process carries `job_id` until the block ends."""
    _current_job["id"] = job_id
    try:
        yield
    finally:
        _current_job["id"] = None


class JobContext(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "job_id", None) is None:
            record.job_id = _current_job["id"]
        return True


# The query parameter that carries a key (the event stream's, for EventSource), and its value in a path.
KEY_IN_QUERY = "access_token"
SECRET_PARAMETERS = re.compile(rf"((?:^|[?&]){KEY_IN_QUERY}=)[^&\s]*")


class RedactSecrets(logging.Filter):
    """Keys never reach a log: the event stream takes one as `?access_token=` (EventSource sends no
    headers), and access logs print each request's path with its query."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(arg, str) and KEY_IN_QUERY in arg for arg in record.args):
            record.args = tuple(
                SECRET_PARAMETERS.sub(r"\1[redacted]", arg) if isinstance(arg, str) else arg for arg in record.args
            )
        if isinstance(record.msg, str) and KEY_IN_QUERY in record.msg:
            record.msg = SECRET_PARAMETERS.sub(r"\1[redacted]", record.msg)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        # Fields passed with `extra=` (job_id, worker…) become top-level keys.
        payload.update({k: v for k, v in record.__dict__.items() if k not in STANDARD_ATTRS and k != "job"})
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        job_id = getattr(record, "job_id", None)
        record.job = f" [job {job_id}]" if job_id else ""
        return super().format(record)


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(JobContext())
    # On the handler, so it sees every record, uvicorn's access lines and httpx's request lines alike.
    handler.addFilter(RedactSecrets())
    if settings.log_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(PlainFormatter("%(asctime)s %(levelname)s %(name)s%(job)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
