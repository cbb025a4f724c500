"""Readiness checks: can this process reach the database and the broker right now."""

from __future__ import annotations

from sqlalchemy import text

from service.db import get_engine
from service.queue import celery_app

CHECK_TIMEOUT_SECONDS = 2.0


def database() -> str:
    try:
        with get_engine().connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        return f"unreachable: {type(exc).__name__}"
    return "ok"


def broker() -> str:
    try:
        with celery_app().connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=CHECK_TIMEOUT_SECONDS)
    except Exception as exc:
        return f"unreachable: {type(exc).__name__}"
    return "ok"


def check_all() -> dict[str, str]:
    return {"database": database(), "broker": broker()}
