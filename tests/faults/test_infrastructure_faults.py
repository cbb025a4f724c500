"""Redis, Postgres and the API restarted under a running job: nothing lost, nothing twice."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.faults.conftest import FAULT_SPEC
from tests.support.isolated import Stack
from tests.support.local_servers import LocalPostgres, LocalRedis, ServerUnavailable
from tests.support.sse import Event, parse, read_events


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[LocalRedis]:
    server = LocalRedis(tmp_path / "redis")
    server.start()
    yield server
    server.kill()


@pytest.fixture
def private_postgres(tmp_path: Path) -> Iterator[LocalPostgres]:
    directory = Path("/tmp") / f"wgan-pg-{os.getpid()}-{time.monotonic_ns()}"
    try:
        server = LocalPostgres(directory)
    except ServerUnavailable as exc:
        pytest.skip(str(exc))
    server.init()
    yield server
    try:
        server.stop("fast")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


class StreamReader(threading.Thread):
    """Follows a job's SSE stream to its end in the background, reconnecting with Last-Event-ID."""

    def __init__(self, url: str, key: str, job_id: str) -> None:
        super().__init__(daemon=True)
        self.url, self.key, self.job_id = url, key, job_id
        self.events: list[Event] = []
        self.reconnects = 0

    def run(self) -> None:
        while True:
            last = self.events[-1].id if self.events else None
            headers = {"Authorization": f"Bearer {self.key}", **({"Last-Event-ID": last} if last else {})}
            try:
                with httpx.stream(
                    "GET", f"{self.url}/api/v1/jobs/{self.job_id}/events", headers=headers, timeout=60
                ) as response:
                    for event in parse(response.iter_lines()):
                        self.events.append(event)
                        if event.event == "status" and event.data["status"] in {"succeeded", "failed", "cancelled"}:
                            return
            except httpx.HTTPError:
                pass
            self.reconnects += 1
            time.sleep(0.2)


def _assert_exact_stream(events: list[Event], steps: list[int]) -> None:
    assert [int(e.id) for e in events] == list(range(1, len(events) + 1))
    seen = [p["step"] for e in events if e.event == "metrics" for p in e.data]
    assert seen == steps
    assert events[-1].data["status"] == "succeeded"


def test_redis_restart_mid_job_loses_nothing_and_the_stream_goes_on(make_stack, private_redis: LocalRedis) -> None:
    stack: Stack = make_stack(broker_url=private_redis.url)
    stack.api()
    stack.worker()
    key = stack.key()
    with httpx.Client(base_url=stack.api_url, headers={"Authorization": f"Bearer {key}"}) as client:
        job_id = client.post("/api/v1/jobs", json={**FAULT_SPEC, "steps": 500}).json()["id"]
        reader = StreamReader(stack.api_url, key, job_id)
        reader.start()
        stack.wait_job(job_id, lambda j: j["progress_step"] >= 50, 60, "training")
        private_redis.kill()
        time.sleep(1.5)
        private_redis.start()
        done = stack.wait_job(job_id, lambda j: j["status"] != "running", 120, "the end")
        assert done["status"] == "succeeded", done["error"]
        reader.join(60)
        _assert_exact_stream(reader.events, list(range(5, 501, 5)))
        assert stack.metric_steps(job_id) == list(range(5, 501, 5))
        # The worker and the API reconnected: a new job is taken and streamed live.
        after = client.post("/api/v1/jobs", json={**FAULT_SPEC, "steps": 40}).json()["id"]
        events = read_events(client, f"/api/v1/jobs/{after}/events", timeout=120)
        assert events[-1].data["status"] == "succeeded"


def test_the_reaper_resends_exactly_what_the_broker_lost(make_stack, private_redis: LocalRedis) -> None:
    import redis

    # Reaper passes every half second and a queued job "waits too long" after one: the old rule (re-send
    # whenever a queue is not empty... or is) would have flooded the queue within seconds.
    stack: Stack = make_stack(broker_url=private_redis.url, requeue_queued_seconds="1", reaper_seconds="0.5")
    stack.api()
    stack.worker(queues="gpu")  # the reaper runs, and nothing takes the cpu queue: a backlog that stays
    broker = redis.Redis.from_url(private_redis.url)
    queue = f"{stack.env['WGAN_REDIS_PREFIX']}:cpu"
    with stack.client() as client:
        jobs = [client.post("/api/v1/jobs", json=FAULT_SPEC).json()["id"] for _ in range(3)]
        time.sleep(4)
        assert broker.llen(queue) == 3, "a backlog in the broker is not sent again"
        resent_before = {job: stack.job(job)["enqueued_at"] for job in jobs}
        private_redis.kill()
        private_redis.start()  # no persistence: the queue and the markers are gone together
        broker = redis.Redis.from_url(private_redis.url)
        deadline = time.monotonic() + 30
        while broker.llen(queue) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)  # more passes: each lost task was sent once, not once per pass
        assert broker.llen(queue) == 3
        assert all(stack.job(job)["enqueued_at"] > resent_before[job] for job in jobs)
        for job in jobs:
            client.post(f"/api/v1/jobs/{job}/cancel")


def test_a_job_submitted_while_the_broker_is_down_trains_once_it_is_back(make_stack, private_redis: LocalRedis) -> None:
    # The API sends the task after its response (service.lifecycle.Defer); with the broker down that send
    # fails, and the reaper sends it once the broker is back: the committed job is never lost.
    stack: Stack = make_stack(broker_url=private_redis.url, requeue_queued_seconds="1", reaper_seconds="0.5")
    stack.api()
    stack.worker()
    with stack.client() as client:
        private_redis.kill()
        made = client.post("/api/v1/jobs", json={**FAULT_SPEC, "steps": 40})
        assert made.status_code == 202, made.text
        job_id = made.json()["id"]
        time.sleep(1.5)
        assert client.get(f"/api/v1/jobs/{job_id}").json()["status"] == "queued"
        private_redis.start()
        done = stack.wait_job(job_id, lambda j: j["status"] not in {"queued", "running"}, 120, "the job's end")
        assert done["status"] == "succeeded", done["error"]
        assert done["attempts"] == 1
        assert stack.metric_steps(job_id) == list(range(5, 41, 5))


def test_postgres_restart_mid_job_keeps_every_batch_whole(make_stack, private_postgres: LocalPostgres) -> None:
    stack: Stack = make_stack(database_url=private_postgres.url, claim_stale_seconds="10")
    stack.api()
    stack.worker()
    client = stack.client()
    job_id = client.post("/api/v1/jobs", json={**FAULT_SPEC, "steps": 500}).json()["id"]
    stack.wait_job(job_id, lambda j: j["progress_step"] >= 50, 60, "training")
    stack.engine.dispose()
    private_postgres.stop("immediate")  # a crash: connections cut, no goodbye
    time.sleep(2)
    private_postgres.start()
    # The API's pooled connections died: at most one request learns it (503, retry), then all is well.
    first = client.get(f"/api/v1/jobs/{job_id}")
    assert first.status_code in {200, 503}, first.text
    if first.status_code == 503:
        assert first.headers["retry-after"] == "1"
        assert first.headers["content-type"] == "application/problem+json"
    assert client.get(f"/api/v1/jobs/{job_id}").status_code == 200
    client.close()
    done = stack.wait_job(job_id, lambda j: j["status"] != "running", 120, "the end")
    assert done["status"] == "succeeded", done["error"]
    assert stack.metric_steps(job_id) == list(range(5, 501, 5))
    # Each metrics event is one committed batch: its points are exactly rows of the metrics table.
    batches = stack.rows("SELECT data FROM events WHERE job_id = :id AND type = 'metrics' ORDER BY seq", id=job_id)
    from_events = [point["step"] for (batch,) in batches for point in batch]
    assert from_events == list(range(5, 501, 5))
    seqs = [row[0] for row in stack.rows("SELECT seq FROM events WHERE job_id = :id ORDER BY seq", id=job_id)]
    assert seqs == list(range(1, len(seqs) + 1))


def test_api_restart_during_a_stream_misses_nothing_and_repeats_nothing(make_stack) -> None:
    stack: Stack = make_stack()
    api = stack.api()
    stack.worker()
    key = stack.key()
    with httpx.Client(base_url=stack.api_url, headers={"Authorization": f"Bearer {key}"}) as client:
        job_id = client.post("/api/v1/jobs", json={**FAULT_SPEC, "steps": 500}).json()["id"]
    reader = StreamReader(stack.api_url, key, job_id)
    reader.start()
    stack.wait_job(job_id, lambda j: j["progress_step"] >= 60, 60, "training")
    os.killpg(api.pid, signal.SIGKILL)
    api.proc.wait()
    time.sleep(1.0)
    stack.processes.remove(api)
    stack.api()  # same port
    done = stack.wait_job(job_id, lambda j: j["status"] != "running", 120, "the end")
    assert done["status"] == "succeeded"
    reader.join(60)
    assert reader.reconnects >= 1
    _assert_exact_stream(reader.events, list(range(5, 501, 5)))
