"""The client through real failures: answers lost on the way back, streams cut mid-event, 429 and 503
with Retry-After. The service is the real one; between it and the client stands a real TCP proxy or a
small HTTP server that refuses before it forwards."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import TOY_SPEC, make_key
from tests.support.tcp_proxy import CuttingProxy
from wgan_client import (
    Client,
    ConnectionFailed,
    JobStatus,
    MetricsEvent,
    RateLimited,
    StatusEvent,
    Unavailable,
)

QUICK = {**TOY_SPEC, "steps": 10, "checkpoint_every": 10}


def test_a_submit_whose_answer_was_lost_is_retried_and_makes_one_job(api: str, worker: Any) -> None:
    key = make_key()
    # The first connection carries the submission to the API, which makes the job; its answer is cut off.
    with CuttingProxy(api, lambda index, _head: 0 if index == 0 else None) as proxy, Client(proxy.url, key) as client:
        job = client.submit(QUICK)
        assert proxy.cuts == 1 and proxy.connections >= 2
        assert [found.id for found in client.list()] == [job.id]
        client.cancel(job)


def test_an_upload_whose_answer_was_lost_is_not_sent_again(api: str, database: str, tmp_path: Any) -> None:
    path = tmp_path / "points.npz"
    np.savez(path, x=np.zeros((8, 2), dtype=np.float32))
    key = make_key()
    with CuttingProxy(api, lambda index, _head: 0 if index == 0 else None) as proxy, Client(proxy.url, key) as client:
        # No key makes an upload safe to repeat: the client says the connection broke rather than upload twice.
        with pytest.raises(ConnectionFailed):
            client.upload_dataset(path)
        assert [found.name for found in client.datasets() if not found.builtin] == ["points"]


def test_follow_reconnects_after_cuts_and_yields_every_event_once(api: str, worker: Any) -> None:
    key = make_key()
    with Client(api, key) as direct:
        job = direct.submit({**TOY_SPEC, "steps": 80, "checkpoint_every": 40})

        # The first three connections to the stream are cut after 700 bytes: inside an event, mostly.
        def rule(index: int, head: bytes) -> int | None:
            return 700 if b"/events" in head and index < 3 else None

        with CuttingProxy(api, rule) as proxy, Client(proxy.url, key) as through:
            events = list(through.follow(job))
        assert proxy.cuts == 3

        assert [int(event.id) for event in events] == list(range(1, len(events) + 1))
        assert isinstance(events[-1], StatusEvent) and events[-1].data.status is JobStatus.SUCCEEDED
        steps = [point.step for event in events if isinstance(event, MetricsEvent) for point in event.data]
        assert steps == list(range(5, 81, 5))
        # Exactly the stream a client that never lost its connection reads.
        replay = list(direct.follow(job))
        assert [(event.id, type(event), event.data) for event in events] == [
            (event.id, type(event), event.data) for event in replay
        ]
        # Resuming from an id of one's own gives what came after it.
        resumed = list(direct.follow(job, last_event_id=events[4].id))
        assert [event.id for event in resumed] == [event.id for event in events[5:]]


class _Refuser(ThreadingHTTPServer):
    """Answers the first `refusals` requests with `status` and a Retry-After, then forwards to the API."""

    def __init__(self, api: str, status: int, retry_after: str, refusals: int) -> None:
        super().__init__(("127.0.0.1", 0), _RefusingHandler)
        self.api, self.status, self.retry_after, self.refusals = api, status, retry_after, refusals
        self.requests: list[float] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class _RefusingHandler(BaseHTTPRequestHandler):
    server: _Refuser

    def do_GET(self) -> None:
        server = self.server
        server.requests.append(time.monotonic())
        if len(server.requests) <= server.refusals:
            body = json.dumps(
                {"type": "about:blank", "title": "refused", "status": server.status, "detail": "later", "instance": "/"}
            ).encode()
            self.send_response(server.status)
            self.send_header("Retry-After", server.retry_after)
            self.send_header("Content-Type", "application/problem+json")
        else:
            forwarded = httpx.get(server.api + self.path, headers={"Authorization": self.headers["Authorization"]})
            body = forwarded.content
            self.send_response(forwarded.status_code)
            self.send_header("Content-Type", forwarded.headers["content-type"])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@contextmanager
def refusing(api: str, status: int, retry_after: str, refusals: int) -> Iterator[_Refuser]:
    server = _Refuser(api, status, retry_after, refusals)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_429_waits_as_long_as_retry_after_says_then_succeeds(api: str, database: str) -> None:
    key = make_key()
    with Client(api, key) as direct:
        job = direct.submit(QUICK)
    with refusing(api, 429, "1", refusals=1) as server, Client(server.url, key) as client:
        assert client.get(job).id == job.id
    first, second = server.requests
    assert second - first >= 1.0


def test_503_retry_after_as_an_http_date(api: str, database: str) -> None:
    key = make_key()
    with Client(api, key) as direct:
        job = direct.submit(QUICK)
    # An HTTP date has whole seconds: three from now is between two and three seconds away.
    with (
        refusing(api, 503, formatdate(time.time() + 3, usegmt=True), refusals=1) as server,
        Client(server.url, key) as c,
    ):
        assert c.get(job).id == job.id
    first, second = server.requests
    assert second - first >= 0.9


def test_a_wait_longer_than_the_client_allows_is_raised_at_once(api: str) -> None:
    with (
        refusing(api, 429, "120", refusals=10) as server,
        Client(server.url, "k", max_retry_wait=5) as client,
        pytest.raises(RateLimited) as refused,
    ):
        client.get("some-job")
    assert refused.value.retry_after == 120 and refused.value.status == 429
    assert len(server.requests) == 1


def test_retries_are_bounded(api: str) -> None:
    with (
        refusing(api, 503, "0", refusals=10) as server,
        Client(server.url, "k", max_retries=2) as client,
        pytest.raises(Unavailable) as refused,
    ):
        client.get("some-job")
    assert refused.value.retry_after == 0
    assert len(server.requests) == 3
