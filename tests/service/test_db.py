"""The database's read connections: a request's reads leave no transaction open while it goes on."""

from __future__ import annotations

from sqlalchemy import select, text

from service.models import Job
from tests.service.conftest import Stored


def test_a_read_on_a_reading_connection_leaves_no_transaction_open(job: Stored) -> None:
    with job.db.reading() as connection:
        assert connection.execute(select(Job.id).where(Job.id == job.job_id)).scalar_one() == job.job_id
        if connection.dialect.name == "postgresql":
            backend = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with job.db.engine.connect() as watcher:
                state = watcher.execute(
                    text("SELECT state FROM pg_stat_activity WHERE pid = :pid"), {"pid": backend}
                ).scalar_one()
            assert state == "idle", "a read holds no snapshot, no locks, while the request does other work"
        else:
            assert not connection.connection.dbapi_connection.in_transaction  # type: ignore[union-attr]
    # Given back as it came: the pool's next checkout is not in autocommit unless asked for.
    with job.db.engine.connect() as connection:
        assert connection.get_isolation_level() != "AUTOCOMMIT"
