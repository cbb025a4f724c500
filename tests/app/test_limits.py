"""Limits that keep one client from exhausting the machine: rate limits (429) and CORS closed by default."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from service.settings import Settings
from tests.conftest import ENV, TOY_SPEC, make_key
from tests.support.processes import start_api

PARKED = {**TOY_SPEC, "device": "cuda"}
LIMITED_ENV = {
    **ENV,
    "WGAN_REDIS_PREFIX": ENV["WGAN_REDIS_PREFIX"] + "-rl",
    "WGAN_RATE_JOBS_PER_MINUTE": "3",
    "WGAN_RATE_SAMPLES_PER_MINUTE": "5",
    "WGAN_RATE_AUTH_FAILURES_PER_MINUTE": "3",
}


@pytest.fixture(scope="module")
def limited_api(database: str, log_dir: Path) -> Iterator[str]:
    process, url = start_api(LIMITED_ENV, log_dir, name="api-limited")
    yield url
    process.stop()


def _spend(call, budget: int) -> list[httpx.Response]:
    """A budget plus one. The window moves (the last 60 s at every moment), so no boundary falls inside."""
    return [call() for _ in range(budget + 1)]


def test_job_creation_is_rate_limited_per_owner(limited_api: str) -> None:
    owner = f"rl-{time.monotonic_ns()}"
    key, same_owner, other = make_key(owner), make_key(owner), make_key()
    with httpx.Client(base_url=limited_api, headers={"Authorization": f"Bearer {key}"}) as client:
        responses = _spend(lambda: client.post("/api/v1/jobs", json=PARKED), 3)
        assert [r.status_code for r in responses[:3]] == [202, 202, 202]
        refused = responses[3]
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert 1 <= int(refused.headers["retry-after"]) <= 61
        # Reading is not limited.
        assert client.get("/api/v1/jobs").status_code == 200
    # A second key of the same owner shares the budget; another owner has its own.
    with httpx.Client(base_url=limited_api, headers={"Authorization": f"Bearer {same_owner}"}) as client:
        assert client.post("/api/v1/jobs", json=PARKED).status_code == 429
    with httpx.Client(base_url=limited_api, headers={"Authorization": f"Bearer {other}"}) as client:
        assert client.post("/api/v1/jobs", json=PARKED).status_code == 202


def test_sampling_is_rate_limited_per_owner(limited_api: str) -> None:
    with httpx.Client(base_url=limited_api, headers={"Authorization": f"Bearer {make_key()}"}) as client:
        job = client.post("/api/v1/jobs", json=PARKED).json()["id"]
        responses = _spend(lambda: client.get(f"/api/v1/jobs/{job}/samples"), 5)
        assert [r.status_code for r in responses[:5]] == [409] * 5  # no checkpoint yet, but counted
        assert responses[5].status_code == 429
        assert "retry-after" in responses[5].headers


def test_cors_is_closed_unless_configured() -> None:
    from app.main import create_app

    preflight = {"Origin": "https://dash.example", "Access-Control-Request-Method": "GET"}
    closed = TestClient(create_app(Settings()))
    assert "access-control-allow-origin" not in closed.options("/api/v1/jobs", headers=preflight).headers
    opened = TestClient(create_app(Settings(cors_origins=["https://dash.example"])))
    allowed = opened.options("/api/v1/jobs", headers=preflight)
    assert allowed.headers["access-control-allow-origin"] == "https://dash.example"
    other = opened.options("/api/v1/jobs", headers={**preflight, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_production_refuses_unsafe_settings() -> None:
    with pytest.raises(ValueError, match="Postgres"):
        Settings(environment="production", database_url="sqlite:///x.db")
    with pytest.raises(ValueError, match="CORS"):
        Settings(environment="production", database_url="postgresql+psycopg://db/x", cors_origins=["*"])


def test_the_api_refuses_an_oversized_request_head(make_stack) -> None:
    import select
    import socket
    from urllib.parse import urlparse

    stack = make_stack(http_max_header_bytes="8192")
    stack.api()
    address = urlparse(stack.api_url)

    def head(pad: int, body: bytes = b"") -> bytes:
        length = f"Content-Length: {len(body)}\r\n".encode() if body else b""
        return b"POST /healthz HTTP/1.1\r\nHost: x\r\n" + length + b"X-Pad: " + b"a" * pad + b"\r\n\r\n" + body

    def response(connection: socket.socket) -> bytes:
        """One whole response: its head, then as many body bytes as its Content-Length says."""

        def more() -> bytes:
            chunk = connection.recv(65536)
            if not chunk:
                raise ConnectionResetError("closed before a whole response")
            return chunk

        data = b""
        while b"\r\n\r\n" not in data:
            data += more()
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
        )
        while len(body) < length:
            body += more()
        return head + b"\r\n\r\n" + body

    def answer(connection: socket.socket, request: bytes) -> bytes:
        """The answer to a request within the bound, sent whole."""
        connection.sendall(request)
        return response(connection)

    def too_large(connection: socket.socket, request: bytes) -> bytes:
        """The answer to a request whose head passes the bound, sent in pieces as a slow client would; b"reset"
        if the server tore the connection down before its answer could be read."""
        try:
            for start in range(0, len(request), 4096):
                connection.sendall(request[start : start + 4096])
                if select.select([connection], [], [], 0)[0]:
                    break  # it has answered: stop sending, read what it said
            return response(connection)
        except ConnectionResetError:
            return b"reset"

    def refused(reply: bytes) -> bool:
        return reply.startswith(b"HTTP/1.1 431 ") or reply == b"reset"

    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        # Within the bound, on one connection: a head, then a body larger than the bound (not part of the head).
        assert answer(connection, head(4000)).startswith(b"HTTP/1.1 405"), "answered by the app"
        assert answer(connection, head(100, b"b" * 50_000)).startswith(b"HTTP/1.1 405")
        # The bound holds for the next request on the same connection, its head arriving in pieces.
        assert refused(too_large(connection, head(1_000_000)))
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        reply = too_large(connection, head(9000))
        assert refused(reply), reply
        assert reply == b"reset" or b"larger than 8192 bytes" in reply


def test_an_address_sending_bad_keys_is_throttled_before_its_keys_are_checked(limited_api: str) -> None:
    # Last in this module: the limited API then refuses this address for a minute.
    with httpx.Client(base_url=limited_api) as client:
        bad = {"Authorization": "Bearer wgan_00000000_not-a-key"}
        codes = [client.get("/api/v1/jobs", headers=bad).status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        good = client.get("/api/v1/jobs", headers={"Authorization": f"Bearer {make_key()}"})
        assert good.status_code == 429, "not even a good key is looked up from a throttled address"
        assert 1 <= int(good.headers["retry-after"]) <= 61
