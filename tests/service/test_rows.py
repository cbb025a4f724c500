"""Rows written by one INSERT (service.repositories.rows): what the returned object says is what was written."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, select

from service.auth import authenticate
from service.models import Event, Job
from service.principal import Principal
from service.repositories import rows
from service.runtime import Runtime
from service.states import JobState
from tests.conftest import make_key
from tests.support.service import runtime


def an_owner(rt: Runtime) -> Principal:
    with rt.db.reads() as session:
        principal = authenticate(session, make_key())
    assert principal is not None
    return principal


def test_the_object_returned_is_the_row_written_defaults_included(database: str) -> None:
    rt = runtime()
    principal = an_owner(rt)
    with rt.db.transaction() as session:
        job = rows.insert(
            session, Job, owner_id=principal.owner_id, name="rows", spec={"a": [1, 2]}, queue="gpu", total_steps=7
        )
        event = rows.insert(session, Event, job_id=job.id, seq=1, type="status", data={"status": "queued"})
        # Written at once, so the transaction's own reads see it.
        assert session.scalar(select(Job.name).where(Job.id == job.id)) == "rows"
    # The Python-side defaults were applied, and the object carries exactly what the row holds.
    assert job.status is JobState.QUEUED and job.progress_step == 0 and job.cancel_requested is False
    assert job.attempts == 0 and job.event_seq == 0 and job.error is None and job.created_at is not None
    with rt.db.reads() as session:
        stored = session.get_one(Job, job.id)
        columns = [attribute.key for attribute in Job.__mapper__.column_attrs]
        assert {c: getattr(stored, c) for c in columns} == {c: getattr(job, c) for c in columns}
        written = session.get_one(Event, (job.id, 1))
        assert (written.data, written.created_at) == (event.data, event.created_at)


def test_a_value_for_no_column_is_refused_before_anything_is_written(database: str) -> None:
    with runtime().db.transaction() as session, pytest.raises(TypeError, match="no columns"):
        rows.insert(session, Event, job_id="nope", seq=1, type="status", data={}, colour="blue")


def test_a_json_column_left_empty_is_sql_null(database: str) -> None:
    rt = runtime()
    principal = an_owner(rt)
    with rt.db.transaction() as session:
        job = rows.insert(session, Job, owner_id=principal.owner_id, name="nulls", spec={}, queue="gpu", total_steps=1)
    with rt.db.reads() as session:
        # Sent as None, a JSON column stores the JSON text 'null', which IS NOT NULL.
        empty = session.execute(
            select(
                Job.latest_metrics.is_(None), Job.error.is_(None), Job.summary.is_(None), Job.overrides.is_(None)
            ).where(Job.id == job.id)
        ).one()
    assert tuple(empty) == (True, True, True, True)
    # The object is not pending anything: it stands for a row already written.
    assert not inspect(job).modified and inspect(job).transient
