"""The reaper: a lost job is requeued, one that lost too many workers fails, and a worker frozen
inside a transaction, or in the middle of a pipelined write, cannot hold the takeover back."""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from service import fencing
from service.db import make_engine
from service.fencing import session_name
from service.lifecycle import Reaped, reap
from service.migrate import upgrade
from service.models import Event, Job, Owner, new_id, utcnow
from service.runtime import Runtime
from service.states import JobState
from tests.support.service import runtime, settings
from worker.recording import transient


def transaction():  # type: ignore[no-untyped-def]
    return runtime().db.transaction()


def _stale_job(
    attempts: int, claimed_by: str = "gone:1:x", cancel_requested: bool = False, rt: Runtime | None = None
) -> str:
    rt = rt or runtime()
    with rt.db.transaction() as session:
        owner = Owner(name=f"lost-{new_id()}")
        session.add(owner)
        session.flush()
        job = Job(
            owner_id=owner.id,
            name="lost",
            spec={"dataset": {"name": "8gaussians"}},
            queue="gpu",
            total_steps=10,
            status=JobState.RUNNING,
            claimed_by=claimed_by,
            attempts=attempts,
            cancel_requested=cancel_requested,
            heartbeat_at=utcnow() - timedelta(seconds=rt.settings.claim_stale_seconds * 3),
        )
        session.add(job)
        session.flush()
        return job.id


def _status_events(job_id: str, rt: Runtime | None = None) -> list[str]:
    with (rt or runtime()).db.transaction() as session:
        events = session.scalars(select(Event).where(Event.job_id == job_id, Event.type == "status")).all()
        return [event.data["status"] for event in events]


def test_a_stale_job_is_requeued_and_one_that_lost_too_many_workers_fails(database: str) -> None:
    settings = runtime().settings
    retried = _stale_job(attempts=1)
    given_up = _stale_job(attempts=settings.max_attempts)
    reap(runtime())
    with transaction() as session:
        retried_row = session.get(Job, retried)
        failed_row = session.get(Job, given_up)
        assert retried_row is not None and failed_row is not None
        assert retried_row.status == "queued"
        assert retried_row.claimed_by is None
        assert failed_row.status == "failed"
        assert failed_row.error is not None
        assert failed_row.error["type"] == "worker_lost"
        assert str(settings.max_attempts) in failed_row.error["message"]
        # Parked on the gpu queue so no test worker takes it.
        retried_row.status = JobState.CANCELLED
    assert _status_events(retried) == ["queued"]
    assert _status_events(given_up) == ["failed"]


def test_a_lost_job_its_owner_asked_to_stop_is_cancelled_not_queued_again(database: str) -> None:
    # Queued again, it would wait forever: no worker takes a job asked to stop.
    stopped = _stale_job(attempts=1, cancel_requested=True)
    # The session's background worker reaps too: whichever reaper came first, none queued it again.
    assert stopped not in reap(runtime()).requeued
    with transaction() as session:
        row = session.get(Job, stopped)
        assert row is not None
        assert (row.status, row.claimed_by) == (JobState.CANCELLED, None) and row.finished_at is not None
    assert _status_events(stopped) == ["cancelled"]


@pytest.fixture(params=["postgresql", "sqlite"])
def reaped(request: pytest.FixtureRequest, database: str, tmp_path: Path) -> Iterator[Runtime]:
    """A runtime whose database holds lost jobs: the suite's own, or an embedded SQLite one (where FOR
    UPDATE locks nothing)."""
    if request.param == "postgresql":
        yield runtime()
        return
    url = f"sqlite:///{tmp_path / 'reaper.db'}"
    upgrade(url)
    own = Runtime.start(settings().model_copy(update={"database_url": url}))
    yield own
    own.db.dispose()


def test_two_reapers_at_once_take_a_lost_job_back_once(reaped: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every worker runs the reaper: two that both read the job as stale before either takes it back must
    # not both queue it (two status events, two training tasks). Each waits for the other after its read.
    both_read = threading.Barrier(2)
    end_sessions = fencing.end_sessions

    def after_both_read(session: Session, worker_ids: Collection[str]) -> int:
        both_read.wait(10)
        return end_sessions(session, worker_ids)

    monkeypatch.setattr(fencing, "end_sessions", after_both_read)
    lost = _stale_job(attempts=1, rt=reaped)
    results: list[Reaped] = []
    reapers = [threading.Thread(target=lambda: results.append(reap(reaped))) for _ in range(2)]
    for reaper in reapers:
        reaper.start()
    for reaper in reapers:
        reaper.join(30)
    assert len(results) == 2
    # The session's background worker reaps the suite's database too: whoever took the job back, once.
    assert sum(lost in result.requeued for result in results) <= 1
    assert _status_events(lost, rt=reaped) == ["queued"]
    with reaped.db.transaction() as session:
        row = session.get(Job, lost)
        assert row is not None and row.status == "queued" and row.claimed_by is None
        row.status = JobState.CANCELLED  # parked: no test worker takes the gpu queue


def _reaped_despite_the_lock(job_id: str, within: float) -> None:
    """A reaper pass ends within `within` seconds with the job handed back, the frozen write not applied."""
    reaper = threading.Thread(target=reap, args=(runtime(),))
    reaper.start()
    reaper.join(timeout=within)
    assert not reaper.is_alive(), "the reaper is still waiting for the frozen writer's lock"
    with transaction() as session:
        row = session.get(Job, job_id)
        assert row is not None
        assert (row.status, row.claimed_by, row.progress_step) == ("queued", None, 0)
        row.status = JobState.CANCELLED  # out of every later test's way


def test_a_worker_frozen_inside_a_transaction_does_not_block_the_takeover(database: str) -> None:
    settings = runtime().settings
    job_id = _stale_job(attempts=1)
    # What a SIGSTOPped trainer leaves behind: its metric write updated the job row and never
    # committed, so the row stays locked until the server ends that session.
    frozen = runtime().db.sessions()
    frozen.execute(update(Job).where(Job.id == job_id).values(progress_step=5))
    _reaped_despite_the_lock(job_id, settings.db_idle_in_transaction_seconds + 30)
    # The frozen process wakes to a closed connection: its uncommitted write is gone, not applied
    # late, and the error is one its writer retries (and then finds its claim lost).
    with pytest.raises(DBAPIError) as woke:
        frozen.execute(select(Job.id).where(Job.id == job_id))
    assert transient(woke.value)
    frozen.close()


def test_a_worker_frozen_in_the_middle_of_a_pipeline_is_fenced_off(database: str) -> None:
    worker_id = "frozen-host:4242:5eb1a7c0"
    job_id = _stale_job(attempts=1, claimed_by=worker_id)
    # What a trainer SIGSTOPped inside a psycopg executemany leaves behind: its UPDATE of the job row
    # sent in pipeline mode, no Sync after it. The server waits to read the rest ("active", not idle in
    # a transaction), so no server timeout ends it and its row lock would hold the takeover forever.
    engine = make_engine(runtime().settings.database_url, application_name=session_name(worker_id))
    frozen = engine.raw_connection()
    wire = frozen.driver_connection.pgconn  # type: ignore[union-attr]
    wire.enter_pipeline_mode()
    wire.send_query_params(b"BEGIN", None)
    wire.send_query_params(b"UPDATE jobs SET progress_step = 5 WHERE id = $1", [job_id.encode()])
    wire.flush()
    with runtime().db.reads() as session:
        assert session.scalar(select(Job.progress_step).where(Job.id == job_id)) == 0  # still waits for Sync
    _reaped_despite_the_lock(job_id, 30)
    frozen.invalidate()
    engine.dispose()
