"""Fencing a worker whose claim went stale: its database sessions are ended before its job is taken over.

A process frozen in the middle of a write (SIGSTOP, a VM pause, a debugger) can leave its Postgres session
holding the job's row lock. Between statements of a transaction the server ends such a session itself
(db_idle_in_transaction_seconds), but not while it waits for the rest of a pipeline, as a psycopg
`executemany` sends it: that session stays "active", waiting to read from a client that never writes,
and the takeover would wait on its lock forever. Each worker names its sessions after its id, so the
reaper can end exactly the sessions of the workers whose claims it is about to take over.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

# Postgres keeps 63 bytes of an application_name: the id's unique tail, not the host name that leads it.
_PREFIX = "wgan-worker "


def session_name(worker_id: str) -> str:
    """The application_name a worker's sessions carry (worker ids are host:pid:token)."""
    return _PREFIX + worker_id.rsplit(":", 1)[-1]


_END_SESSIONS = text(
    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
    "WHERE application_name = ANY(:names) AND pid <> pg_backend_pid()"
)


def end_sessions(session: Session, worker_ids: Collection[str]) -> int:
    """End every other Postgres session of these workers, from `session`'s transaction; returns how many.
    Never raises: without the right to end them (another role's sessions) the savepoint is rolled back and
    the takeover waits for the server's own timeouts instead."""
    if not worker_ids or session.get_bind().dialect.name != "postgresql":
        return 0
    names = sorted({session_name(worker_id) for worker_id in worker_ids})
    try:
        with session.begin_nested():
            ended = int(session.execute(_END_SESSIONS, {"names": names}).scalar() or 0)
    except DBAPIError as exc:
        log.warning("could not end the sessions of stale workers %s: %s", names, exc.orig)
        return 0
    if ended:
        log.info("ended %d database session(s) of stale workers %s", ended, names)
    return ended
