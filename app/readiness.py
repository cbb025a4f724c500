"""Readiness checks: can this process reach the database and the broker right now."""

from __future__ import annotations

from sqlalchemy import text

from service.runtime import Runtime

CHECK_TIMEOUT_SECONDS = 2.0


def database(rt: Runtime) -> str:
    try:
        with rt.db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        return f"unreachable: {type(exc).__name__}"
    return "ok"


def broker(rt: Runtime) -> str:
    try:
        with rt.tasks.celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=CHECK_TIMEOUT_SECONDS)
    except Exception as exc:
        return f"unreachable: {type(exc).__name__}"
    return "ok"


def check_all(rt: Runtime) -> dict[str, str]:
    return {"database": database(rt), "broker": broker(rt)}
