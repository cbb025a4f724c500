"""The one engine and session factory, for Postgres in production and SQLite in the embedded default."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from service.json_text import compact
from service.settings import Settings

SQLITE_BUSY_TIMEOUT_MS = 30_000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the API read while a worker writes; foreign keys are off in SQLite unless asked.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


# What a statement-only read or write runs on: an ORM Session, or a Core connection where no ORM object
# is loaded or changed (Database.begin).
Executor = Session | Connection


def connection_of(executor: Executor) -> Connection:
    """The Core connection under `executor`, for statements that need none of the ORM's handling."""
    return executor if isinstance(executor, Connection) else executor.connection()


DEFAULT_POOL_SIZE = 10
DEFAULT_POOL_TIMEOUT_SECONDS = 10.0


def make_engine(
    url: str,
    idle_in_transaction_seconds: float | None = None,
    pool_size: int = DEFAULT_POOL_SIZE,
    application_name: str | None = None,
    pool_timeout: float = DEFAULT_POOL_TIMEOUT_SECONDS,
) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            json_serializer=compact,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # No pre-ping: it costs a round trip on every checkout. After a Postgres restart the first use of
    # a dead connection fails as a disconnect, which invalidates the whole pool at once; the API
    # answers that one request 503 (app/problems.py) and workers retry their writes.
    connect_args: dict[str, Any] = {}
    if idle_in_transaction_seconds:
        # A process frozen inside a transaction (SIGSTOP, a VM pause, a debugger) would hold its row
        # locks forever, and the reaper's takeover of its job would block on them; the server ends
        # such a session instead, and the frozen process finds its connection gone when it wakes.
        timeout_ms = round(idle_in_transaction_seconds * 1000)
        connect_args["options"] = f"-c idle_in_transaction_session_timeout={timeout_ms}"
    if application_name:
        # What pg_stat_activity shows, and what service.fencing ends the sessions of a stale worker by.
        connect_args["application_name"] = application_name
    return create_engine(
        url,
        # No overflow: a connection opened past the pool is closed again when given back, and under load
        # that was a new Postgres session (a fork, its authentication) every few requests.
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=pool_timeout,
        pool_recycle=1800,
        connect_args=connect_args,
        json_serializer=compact,
    )


class Database:
    """One database: its engine, the sessions that write (one transaction each) and those that only read."""

    def __init__(
        self,
        url: str,
        idle_in_transaction_seconds: float | None = None,
        pool_size: int = DEFAULT_POOL_SIZE,
        application_name: str | None = None,
        pool_timeout: float = DEFAULT_POOL_TIMEOUT_SECONDS,
    ) -> None:
        self.engine = make_engine(url, idle_in_transaction_seconds, pool_size, application_name, pool_timeout)
        self.sessions = sessionmaker(bind=self.engine, expire_on_commit=False)
        # Sessions for requests that only read: autocommit, so a read costs its one round trip, with no
        # BEGIN before it and no ROLLBACK after, and never leaves a transaction open while the request
        # goes on to other work. Each statement sees its own snapshot; writes belong in `transaction()`.
        self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self.reads = sessionmaker(bind=self._autocommit, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings, application_name: str | None = None) -> Database:
        return cls(
            settings.database_url,
            settings.db_idle_in_transaction_seconds,
            settings.db_pool_size,
            application_name,
            settings.db_pool_timeout_seconds,
        )

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits once at the end, or rolls back on any error."""
        with self.sessions() as session, session.begin():
            yield session

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A Core connection whose statements commit once at the end, or roll back on any error: for a
        transaction of statements alone. A Session around a submission's (its transaction's state machine,
        events and bookkeeping) ran 400 lines of Python beyond the anchor app's (bench request-cost)."""
        with self.engine.begin() as connection:
            yield connection

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """An autocommit Core connection, as `reads` sessions are, for reads of statements alone: a request's
        key and what it reads in the same round trip (app.deps.Caller.read). The Session around them ran
        about 300 lines of Python per request of its own (bench sampling, counted with a line tracer)."""
        with self._autocommit.connect() as connection:
            yield connection

    def dispose(self) -> None:
        self.engine.dispose()
