"""The job lifecycle against the real Postgres and Redis: each transition moves the state it names,
appends the one status event a client sees, and announces its events only once they have committed."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from service import lifecycle
from service.auth import authenticate, create_key
from service.errors import Conflict
from service.migrate import upgrade
from service.models import Event, Experiment, Job, MetricRow
from service.principal import Principal
from service.records import CheckpointOut, Metric, StatusEvent
from service.repositories import experiments as experiment_repo, jobs as job_repo
from service.runtime import Runtime
from service.states import JobState
from tests.conftest import DATABASE
from tests.support import stack
from tests.support.service import settings
from wgan.config import TrainSpec
from wgan.trainer import MetricPoint

# Parked on the gpu queue, which no test worker serves: these tests make every transition themselves.
PARKED = TrainSpec.model_validate({"dataset": {"name": "8gaussians"}, "device": "cuda", "steps": 40})


@pytest.fixture(scope="module")
def rt(database: str) -> Iterator[Runtime]:
    """The service on a database of this module's own: the suite's worker reaps and dispatches the shared
    one at any moment, under its own settings, and these tests make every transition themselves."""
    name = f"{DATABASE}_lifecycle"
    url = stack.create_database(name)
    upgrade(url)
    own = Runtime.start(settings().model_copy(update={"database_url": url}))
    yield own
    own.db.dispose()
    stack.drop_database(name)


@pytest.fixture
def owner(rt: Runtime) -> Principal:
    tag = f"owner-{stack.new_tag()}"
    with rt.db.transaction() as session:
        key = create_key(session, name=tag, owner=tag).key
    with rt.db.reads() as session:
        principal = authenticate(session, key)
    assert principal is not None
    return principal


class Announced:
    """Every event announced on the test deployment's channels, decoded, as a stream client sees it."""

    def __init__(self, rt: Runtime) -> None:
        self.client = redis.Redis.from_url(rt.settings.events_url)
        self.pubsub = self.client.pubsub()
        self.pubsub.psubscribe(f"{rt.events.prefix}*")
        self.pubsub.get_message(timeout=1)  # the subscription's own confirmation
        self.seen: list[dict[str, Any]] = []

    def drain(self, job_id: str) -> list[dict[str, Any]]:
        """What was announced for `job_id` so far."""
        return [event for event in self._drain() if event["job_id"] == job_id]

    def _drain(self) -> list[dict[str, Any]]:
        while (message := self.pubsub.get_message(timeout=0.5)) is not None:
            if message["type"] == "pmessage":
                header, _, raw = message["data"].decode().partition("\n")
                job_id = message["channel"].decode().rsplit(":", 1)[-1]
                self.seen.append({**json.loads(header), "job_id": job_id, "data": json.loads(raw)})
        return self.seen

    def close(self) -> None:
        self.pubsub.close()
        self.client.close()


@pytest.fixture
def announced(rt: Runtime) -> Iterator[Announced]:
    listener = Announced(rt)
    yield listener
    listener.close()


def _state(rt: Runtime, job_id: str) -> Job:
    with rt.db.reads() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def _statuses(rt: Runtime, job_id: str) -> list[str]:
    with rt.db.reads() as session:
        rows = session.scalars(select(Event).where(Event.job_id == job_id, Event.type == "status").order_by(Event.seq))
        return [StatusEvent.model_validate(row.data).status.value for row in rows]


def test_submit_then_cancel_a_queued_job(rt: Runtime, owner: Principal, announced: Announced) -> None:
    job = lifecycle.submit(rt, owner, PARKED)
    assert (job.status, job.queue) == (JobState.QUEUED, "gpu")
    assert job.enqueued_at is not None
    lifecycle.request_cancel(rt, owner, job.id)
    assert _state(rt, job.id).status is JobState.CANCELLED
    assert _statuses(rt, job.id) == ["queued", "cancelled"]
    with pytest.raises(Conflict, match="already cancelled"):
        lifecycle.request_cancel(rt, owner, job.id)
    assert [(event["seq"], event["data"]["status"], event["final"]) for event in announced.drain(job.id)] == [
        (1, "queued", False),
        (2, "cancelled", True),
    ]


def test_an_owner_at_capacity_waits_unseen_and_is_dispatched_when_room_frees(rt: Runtime, owner: Principal) -> None:
    one = dataclasses.replace(rt, settings=rt.settings.model_copy(update={"max_running_per_owner": 1}))
    first = lifecycle.submit(one, owner, PARKED)
    second = lifecycle.submit(one, owner, PARKED)
    claimed = lifecycle.claim(one, first.id, "test-worker")
    assert (claimed.job_id, claimed.attempt, claimed.recorded_step) == (first.id, 1, 0)
    with pytest.raises(lifecycle.OwnerAtCapacity):
        lifecycle.claim(one, second.id, "test-worker")
    waiting = _state(rt, second.id)
    assert (waiting.status, waiting.enqueued_at) == (JobState.WAITING, None)
    assert waiting.status.status.value == "queued"
    assert _statuses(rt, second.id) == ["queued"], "waiting is not a change a client sees"
    assert lifecycle.dispatch_waiting(one) == [], "no room while the first one runs"
    lifecycle.finish(one, first.id, "test-worker", JobState.SUCCEEDED)
    assert lifecycle.dispatch_waiting(one) == [second.id]
    sent = _state(rt, second.id)
    assert sent.status is JobState.QUEUED and sent.enqueued_at is not None
    assert _statuses(rt, first.id) == ["queued", "running", "succeeded"]
    lifecycle.request_cancel(rt, owner, second.id)
    with pytest.raises(lifecycle.NotClaimable):
        lifecycle.claim(one, second.id, "test-worker")


def test_a_waiting_job_cancelled_while_it_is_being_dispatched_stays_cancelled(
    rt: Runtime, owner: Principal, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = dataclasses.replace(rt, settings=rt.settings.model_copy(update={"max_running_per_owner": 1}))
    first = lifecycle.submit(one, owner, PARKED)
    second = lifecycle.submit(one, owner, PARKED)
    lifecycle.claim(one, first.id, "test-worker")
    with pytest.raises(lifecycle.OwnerAtCapacity):
        lifecycle.claim(one, second.id, "test-worker")
    lifecycle.finish(one, first.id, "test-worker", JobState.SUCCEEDED)
    dispatchable = job_repo.dispatchable

    def cancelled_after_the_read(session: Session, max_running_per_owner: int) -> list[Job]:
        found = dispatchable(session, max_running_per_owner)
        assert [job.id for job in found] == [second.id]
        # Its owner cancels it between the reaper's read and its write (the cancel commits first).
        lifecycle.request_cancel(rt, owner, second.id)
        return found

    monkeypatch.setattr(job_repo, "dispatchable", cancelled_after_the_read)
    assert lifecycle.dispatch_waiting(one) == []
    assert _state(rt, second.id).status is JobState.CANCELLED
    assert _statuses(rt, second.id) == ["queued", "cancelled"]


def test_an_owners_jobs_start_in_submission_order_whichever_task_comes_first(rt: Runtime, owner: Principal) -> None:
    three = dataclasses.replace(rt, settings=rt.settings.model_copy(update={"max_running_per_owner": 3}))
    first, second, third = (lifecycle.submit(three, owner, PARKED) for _ in range(3))
    # Only older jobs on the same queue come first: a cpu job does not wait for gpu jobs.
    elsewhere = lifecycle.submit(three, owner, PARKED.model_copy(update={"device": "cpu"}))
    assert lifecycle.claim(three, elsewhere.id, "worker-a").job_id == elsewhere.id
    # The third's task reaches a worker first: the two older ones would leave it no room, so it waits.
    with pytest.raises(lifecycle.OwnerAtCapacity):
        lifecycle.claim(three, third.id, "worker-b")
    assert lifecycle.claim(three, second.id, "worker-c").job_id == second.id  # room for it after the first
    assert lifecycle.claim(three, first.id, "worker-d").job_id == first.id
    assert _state(rt, third.id).status is JobState.WAITING
    for job in (first, second, third, elsewhere):
        lifecycle.request_cancel(rt, owner, job.id)


def test_a_waiting_job_is_sent_again_only_when_a_worker_would_start_it(rt: Runtime, owner: Principal) -> None:
    two = dataclasses.replace(rt, settings=rt.settings.model_copy(update={"max_running_per_owner": 2}))
    first, second, third = (lifecycle.submit(two, owner, PARKED) for _ in range(3))
    with pytest.raises(lifecycle.OwnerAtCapacity):
        lifecycle.claim(two, third.id, "worker-a")  # its task came first; the two older ones go first
    # Nothing runs yet, but the two queued ahead of it fill its owner's room: sending it now would only
    # have it refused again, once every reaper pass.
    assert third.id not in lifecycle.dispatch_waiting(two)
    lifecycle.claim(two, first.id, "worker-b")
    assert third.id not in lifecycle.dispatch_waiting(two)
    lifecycle.claim(two, second.id, "worker-c")
    assert third.id not in lifecycle.dispatch_waiting(two)
    lifecycle.finish(two, first.id, "worker-b", JobState.CANCELLED)
    assert third.id in lifecycle.dispatch_waiting(two)
    assert lifecycle.claim(two, third.id, "worker-a").job_id == third.id
    lifecycle.finish(two, second.id, "worker-c", JobState.CANCELLED)
    lifecycle.finish(two, third.id, "worker-a", JobState.CANCELLED)


def _point(step: int, measures: dict[str, float] | None = None) -> MetricPoint:
    return MetricPoint(step, 0.5, -0.25, 1.0 / step, 0.01, 0.002, measures or {})


def test_record_stores_and_announces_one_shape_and_a_lost_claim_writes_nothing(
    rt: Runtime, owner: Principal, announced: Announced
) -> None:
    job = lifecycle.submit(rt, owner, PARKED)
    lifecycle.claim(rt, job.id, "holder")
    from service.models import utcnow

    now = utcnow()
    metrics = [
        Metric.from_point(_point(10), now),
        Metric.from_point(_point(20, {"exact_w1": 0.3, "modes_covered": 8.0, "oops": float("nan")}), now),
    ]
    checkpoint = lifecycle.NewCheckpoint(20, "k", "0" * 64, 123, {"exact_w1": 0.3}, None, 0.05)
    lifecycle.record(rt, job.id, "holder", metrics, [checkpoint], "exact_w1")
    with rt.db.reads() as session:
        rows = session.scalars(select(MetricRow).where(MetricRow.job_id == job.id).order_by(MetricRow.step)).all()
        stored = [Metric.of(row).model_dump(mode="json") for row in rows]
    events = [e for e in announced.drain(job.id) if e["type"] in {"metrics", "checkpoint"}]
    # What the stream sent is what REST reads back from the rows; the undefined measure is left out.
    assert events[0]["data"] == stored
    assert stored[1]["measures"] == {"exact_w1": 0.3, "modes_covered": 8.0}
    assert (stored[1]["exact_w1"], stored[1]["modes_covered"]) == (0.3, 8.0)
    assert CheckpointOut.model_validate(events[1]["data"]).step == 20
    after = _state(rt, job.id)
    assert after.progress_step == 20
    assert after.summary is not None and after.summary["best"]["step"] == 20

    count = len(announced.drain(job.id))
    with pytest.raises(lifecycle.ClaimLost):
        lifecycle.record(rt, job.id, "usurper", [Metric.from_point(_point(30), now)], [], "exact_w1")
    assert len(announced.drain(job.id)) == count, "a rolled-back transition announces nothing"
    assert _state(rt, job.id).progress_step == 20
    lifecycle.finish(rt, job.id, "holder", JobState.CANCELLED)


def test_cancelling_an_experiment_waits_for_a_run_held_by_its_worker_and_deadlocks_with_none(
    rt: Runtime, owner: Principal
) -> None:
    experiment = lifecycle.submit_experiment(
        rt, owner, "locks", PARKED.model_dump(mode="json"), None, [lifecycle.PlannedRun({}, PARKED)] * 2
    )
    with rt.db.reads() as session:
        run_ids = sorted(job.id for job in experiment_repo.runs(session, experiment.id))
    cancelled: list[BaseException | None] = []
    with rt.db.transaction() as worker:
        # As a worker recording a run does: its run's row first, then (to append to the stream) the
        # experiment's.
        worker.execute(select(Job).where(Job.id == run_ids[0]).with_for_update())

        def cancel() -> None:
            try:
                lifecycle.cancel_experiment(rt, owner, experiment.id)
                cancelled.append(None)
            except BaseException as exc:
                cancelled.append(exc)

        canceller = threading.Thread(target=cancel)
        canceller.start()
        canceller.join(1)
        assert canceller.is_alive(), "the cancel waits for the run's row"
        worker.execute(select(Experiment).where(Experiment.id == experiment.id).with_for_update())
    canceller.join(30)
    assert cancelled == [None]
    assert [_state(rt, run_id).status for run_id in run_ids] == [JobState.CANCELLED] * 2
