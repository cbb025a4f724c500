"""Statements on the driver's cursor (service.driver_sql) do what `Connection.execute` does with them: the
same values stored and read back, in the connection's transaction, with SQLAlchemy's errors, and a lost
connection never handed out again. On both databases the service runs on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from service import driver_sql
from service.db import Database
from service.migrate import upgrade
from service.models import Job, Owner, new_id
from service.states import JobState
from tests.support.service import settings

WRITE = insert(Job)
# Columns of every kind a hot statement reads (text, an enum, JSON, a zoned time, a boolean, a NULL), and
# beside the named bind an anonymous one whose type processes its value (an enum's).
READ = select(Job.id, Job.status, Job.spec, Job.created_at, Job.cancel_requested, Job.error).where(
    Job.id == bindparam("job_id"), Job.status != JobState.FAILED
)


@pytest.fixture(params=["postgresql", "sqlite"])
def db(request: pytest.FixtureRequest, tmp_path: Path, database: str) -> Iterator[Database]:
    url = settings().database_url if request.param == "postgresql" else f"sqlite:///{tmp_path / 'driver.db'}"
    if request.param == "sqlite":
        upgrade(url)
    db = Database(url)
    yield db
    db.dispose()


def an_owner(db: Database) -> str:
    owner_id = new_id()
    with db.transaction() as session:
        session.add(Owner(id=owner_id, name=f"driver-{owner_id[:8]}"))
    return owner_id


def a_job(owner_id: str) -> dict[str, Any]:
    return {
        "id": new_id(),
        "owner_id": owner_id,
        "name": "driver",
        "status": JobState.RUNNING,
        # Text that needs escaping, a float, a null: the JSON bind is exercised for real.
        "spec": {"dataset": {"name": 'quote " and ü'}, "steps": [1, 2.5, None]},
        "queue": "gpu",
        "progress_step": 3,
        "total_steps": 9,
        "cancel_requested": True,
        "attempts": 1,
        "event_seq": 0,
        "created_at": datetime(2026, 12, 7, 13, 0, 0, 123456, tzinfo=UTC),
    }


def test_a_row_written_and_read_on_the_driver_is_what_execute_writes_and_reads(db: Database) -> None:
    owner_id = an_owner(db)
    ours, theirs = a_job(owner_id), a_job(owner_id)
    with db.begin() as connection:
        driver_sql.execute(connection, WRITE, ours)
        connection.execute(WRITE, theirs)
    with db.reading() as connection:
        for job in (ours, theirs):
            expected = connection.execute(READ, {"job_id": job["id"]}).one()
            assert driver_sql.first(connection, READ, {"job_id": job["id"]}) == tuple(expected)
        read = driver_sql.first(connection, READ, {"job_id": ours["id"]})
        assert driver_sql.first(connection, READ, {"job_id": "no such job"}) is None
    assert read == (ours["id"], JobState.RUNNING, ours["spec"], ours["created_at"], True, None)
    assert read is not None and read[3].tzinfo is not None


def test_the_statement_is_part_of_the_connections_transaction(db: Database) -> None:
    owner_id = an_owner(db)
    undone, kept = a_job(owner_id), a_job(owner_id)

    def fails_after_the_write() -> None:
        with db.begin() as connection:
            driver_sql.execute(connection, WRITE, undone)
            raise RuntimeError("the transaction fails after the write")

    with pytest.raises(RuntimeError):
        fails_after_the_write()
    # A connection with no transaction yet begins one, as `execute` would: its commit() keeps the row.
    with db.engine.connect() as connection:
        driver_sql.execute(connection, WRITE, kept)
        connection.commit()
    with db.reading() as connection:
        assert driver_sql.first(connection, READ, {"job_id": undone["id"]}) is None
        assert driver_sql.first(connection, READ, {"job_id": kept["id"]}) is not None


def test_a_driver_error_is_sqlalchemys_and_the_connection_stays_usable(db: Database) -> None:
    job = a_job(an_owner(db))
    with db.begin() as connection:
        driver_sql.execute(connection, WRITE, job)
    with pytest.raises(IntegrityError), db.begin() as connection:
        driver_sql.execute(connection, WRITE, job)
    with db.reading() as connection:
        assert driver_sql.first(connection, READ, {"job_id": job["id"]}) is not None


def test_a_lost_connection_is_invalidated_and_never_handed_out_again(database: str) -> None:
    db, admin = Database(settings().database_url, pool_size=1), Database(settings().database_url)
    try:
        with db.reading() as connection:
            pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with admin.reading() as other:
            assert other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
        with db.reading() as connection:
            with pytest.raises(DBAPIError) as raised:
                driver_sql.first(connection, READ, {"job_id": "any"})
            assert raised.value.connection_invalidated and connection.invalidated
        # The pool's one connection was the lost one: the next checkout is a new session.
        with db.reading() as connection:
            assert connection.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid
            assert driver_sql.first(connection, READ, {"job_id": "any"}) is None
    finally:
        db.dispose()
        admin.dispose()


def test_a_statement_rendered_per_execution_is_refused_by_name(db: Database) -> None:
    with db.reading() as connection, pytest.raises(ValueError, match="use execute"):
        driver_sql.first(connection, select(Job.id).where(Job.id.in_(["a", "b"])), {})
