"""The request path: dependencies that make no thread-pool trip, and one pooled connection per request."""

from __future__ import annotations

import inspect
import threading
import typing
from collections.abc import Iterator
from typing import Any

import anyio.to_thread
from fastapi import Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from sqlalchemy import event

from service.auth import hash_key
from service.models import ApiKey, utcnow
from tests.conftest import TOY_SPEC, make_key

PARKED = {**TOY_SPEC, "device": "cuda"}  # on the GPU queue, which no test worker serves


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependencies(sub)


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (included := getattr(route, "original_router", None)) is not None:
            # FastAPI ≥ 0.16x keeps an included router whole, resolving its routes lazily.
            yield from _api_routes(included.routes)


def _is_async(call: Any) -> bool:
    # A function, or an instance whose __call__ is one (FastAPI's security schemes).
    method = call if inspect.isfunction(call) else type(call).__call__
    return inspect.iscoroutinefunction(method) or inspect.isasyncgenfunction(method)


def test_every_route_makes_one_thread_pool_trip_at_most(app_with) -> None:
    # FastAPI runs each plain `def` dependency in the thread pool, one trip each, and a plain `def`
    # endpoint in one more: a request's database work belongs in a single trip (app.deps.Caller).
    app = app_with().app
    routes = list(_api_routes(app.routes))
    assert len(routes) > 30
    trips = {}
    for route in routes:
        sync = [dep for dep in _dependencies(route.dependant) if dep.call is not None and not _is_async(dep.call)]
        trips[f"{','.join(sorted(route.methods))} {route.path}"] = len(sync) + (0 if _is_async(route.endpoint) else 1)
    assert {route: n for route, n in trips.items() if n > 1} == {}
    assert trips["GET /api/v1/jobs/{job_id}"] == 1


def test_the_job_routes_make_one_thread_pool_trip_in_all_serialization_included(app_with, monkeypatch) -> None:
    # The static count above cannot see FastAPI's own trip to validate a plain `def` route's return value
    # (fastapi.routing.serialize_response): counted here as they run (app.replies).
    client = app_with()
    job = client.post("/api/v1/jobs", json=PARKED).json()["id"]
    trips = 0
    run_sync = anyio.to_thread.run_sync

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal trips
        trips += 1
        return await run_sync(*args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    for method, path, body, answer in [
        ("POST", "/api/v1/jobs", PARKED, 202),
        ("POST", "/api/v1/jobs/preview", PARKED, 200),
        ("GET", f"/api/v1/jobs/{job}", None, 200),
        ("GET", "/api/v1/jobs", None, 200),
        ("GET", f"/api/v1/jobs/{job}/metrics", None, 200),
        ("GET", f"/api/v1/jobs/{job}/metrics/history", None, 200),
        ("GET", f"/api/v1/jobs/{job}/checkpoints", None, 200),
        ("POST", f"/api/v1/jobs/{job}/cancel", None, 202),
        ("GET", "/api/v1/datasets", None, 200),
        ("POST", "/api/v1/experiments", {"name": "trips", "base": PARKED, "grid": {"seed": [0, 1]}}, 202),
        ("GET", "/api/v1/experiments", None, 200),
        ("GET", "/api/v1/webhooks", None, 200),
    ]:
        trips = 0
        response = client.request(method, path, json=body)
        assert (response.status_code, response.headers["content-type"]) == (answer, "application/json"), path
        assert trips == 1, (method, path)
        if path == "/api/v1/experiments" and method == "POST":
            trips = 0
            assert client.get(response.headers["location"]).status_code == 200
            assert trips == 1, response.headers["location"]
    trips = 0
    assert client.get("/healthz").json() == {"status": "ok"}
    assert trips == 0  # nothing there waits


def test_every_plain_def_route_sends_its_own_response(app_with) -> None:
    # What a plain `def` route returns that is not a Response costs FastAPI a second trip to validate it
    # (the test above counts them); app.replies.reply sends a model from the route's own trip.
    app = app_with().app
    model_returning = [
        f"{','.join(sorted(route.methods))} {route.path}"
        for route in _api_routes(app.routes)
        if not _is_async(route.endpoint) and not issubclass(typing.get_type_hints(route.endpoint)["return"], Response)
    ]
    assert model_returning == []


def test_a_job_answers_as_its_schema_says(app_with) -> None:
    from app import schemas

    client = app_with()
    made = client.post("/api/v1/jobs", json=PARKED)
    assert made.headers["location"] == f"/api/v1/jobs/{made.json()['id']}"
    for body in (made.json(), client.get(made.headers["location"]).json()):
        assert schemas.Job.model_validate(body).model_dump(mode="json", by_alias=True) == body


def test_a_request_holds_one_pooled_connection_at_most(app_with) -> None:
    client = app_with()
    engine = client.app.state.runtime.db.engine
    lock = threading.Lock()
    held = {"now": 0, "most": 0, "taken": 0}

    def out(*_: Any) -> None:
        with lock:
            held["now"] += 1
            held["taken"] += 1
            held["most"] = max(held["most"], held["now"])

    def back(*_: Any) -> None:
        with lock:
            held["now"] -= 1

    def most_held(method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        held["most"] = held["taken"] = 0
        response = client.request(method, path, **kwargs)
        assert response.status_code < 400, (path, response.text)
        return held["most"], response

    event.listen(engine, "checkout", out)
    event.listen(engine, "checkin", back)
    try:
        # A submission checks the key in its own transaction: one connection, taken once.
        most, made = most_held("POST", "/api/v1/jobs", json=PARKED)
        assert (most, held["taken"]) == (1, 1)
        # With an Idempotency-Key, the key is checked in a read session given back before the transaction.
        most, _ = most_held("POST", "/api/v1/jobs", json=PARKED, headers={"Idempotency-Key": "one-connection"})
        assert most == 1
        job = made.json()["id"]
        for method, path in [
            ("GET", f"/api/v1/jobs/{job}"),
            ("GET", "/api/v1/jobs"),
            ("GET", f"/api/v1/jobs/{job}/metrics"),
            ("GET", f"/api/v1/jobs/{job}/metrics/history"),
            ("GET", f"/api/v1/jobs/{job}/checkpoints"),
            ("POST", f"/api/v1/jobs/{job}/cancel"),
            ("DELETE", f"/api/v1/jobs/{job}"),
        ]:
            assert most_held(method, path)[0] == 1, path
    finally:
        event.remove(engine, "checkout", out)
        event.remove(engine, "checkin", back)
    assert held["now"] == 0


def test_a_request_that_finds_every_connection_in_use_is_answered_503_and_the_next_one_is_served(app_with) -> None:
    client = app_with(db_pool_size=1, db_pool_timeout_seconds=0.2)
    job = client.post("/api/v1/jobs", json=PARKED).json()["id"]
    with client.app.state.runtime.db.engine.connect():  # the pool's only connection, held
        busy = client.get(f"/api/v1/jobs/{job}")
    assert busy.status_code == 503, busy.text
    assert busy.headers["Retry-After"] == "1"
    assert busy.json()["detail"] == "the service is busy; retry the request"
    assert client.get(f"/api/v1/jobs/{job}").status_code == 200


def test_a_job_or_sample_read_checks_its_key_in_the_statement_that_reads_the_job(app_with) -> None:
    client = app_with()
    other = app_with()
    admin = app_with(make_key(admin=True))
    mine = client.post("/api/v1/jobs", json=PARKED).json()["id"]
    theirs = other.post("/api/v1/jobs", json=PARKED).json()["id"]
    statements: list[str] = []

    def executed(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    def read(reader: Any, path: str) -> tuple[int, int]:
        statements.clear()
        return reader.get(path).status_code, len(statements)

    # Each in-process app has an engine of its own.
    engines = [reader.app.state.runtime.db.engine for reader in (client, admin)]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", executed)
    try:
        # Found: one round trip for the key and the job together, the owner's or, for an admin, anyone's.
        assert read(client, f"/api/v1/jobs/{mine}") == (200, 1)
        assert read(admin, f"/api/v1/jobs/{theirs}") == (200, 1)
        # Not found together: the key is checked alone, then the job; the answers are the usual ones.
        assert read(client, f"/api/v1/jobs/{theirs}") == (404, 3)
        assert read(client, "/api/v1/jobs/00000000-0000-4000-8000-000000000000") == (404, 3)
        assert read(client, "/api/v1/jobs/not-an-id")[0] == 404
        # Sampling reads the key, the job's spec and its checkpoint the same way (this job has none yet: 409).
        assert read(client, f"/api/v1/jobs/{mine}/samples") == (409, 1)
        assert read(admin, f"/api/v1/jobs/{theirs}/samples?checkpoint=best") == (409, 1)
        assert read(client, f"/api/v1/jobs/{theirs}/samples") == (404, 3)
        client.headers["Authorization"] = "Bearer wgan_not_a_key"
        assert read(client, f"/api/v1/jobs/{mine}")[0] == 401
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", executed)
    # A revoked key reads nothing, its own jobs included.
    revoked = make_key()
    reader = app_with(revoked)
    own = reader.post("/api/v1/jobs", json=PARKED).json()["id"]
    with client.app.state.runtime.db.transaction() as session:
        session.query(ApiKey).filter(ApiKey.key_hash == hash_key(revoked)).update({"revoked_at": utcnow()})
    assert reader.get(f"/api/v1/jobs/{own}").status_code == 401
    assert reader.get(f"/api/v1/jobs/{own}/samples").status_code == 401
