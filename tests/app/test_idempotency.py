"""Idempotency-Key on job creation: replay, mismatch (422), in flight (409), never two jobs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.conftest import TOY_SPEC

PARKED = {**TOY_SPEC, "device": "cuda"}


def _jobs(client: httpx.Client) -> list[str]:
    return [job["id"] for job in client.get("/api/v1/jobs").json()["items"]]


def test_same_key_and_body_returns_the_first_job(client: httpx.Client) -> None:
    first = client.post("/api/v1/jobs", json=PARKED, headers={"Idempotency-Key": "k-1"})
    second = client.post("/api/v1/jobs", json=PARKED, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    assert second.headers["location"] == first.headers["location"]
    assert _jobs(client) == [first.json()["id"]]


def test_same_key_other_body_is_422(client: httpx.Client) -> None:
    client.post("/api/v1/jobs", json=PARKED, headers={"Idempotency-Key": "k-2"})
    response = client.post("/api/v1/jobs", json={**PARKED, "steps": 61}, headers={"Idempotency-Key": "k-2"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    assert len(_jobs(client)) == 1


def test_keys_are_per_owner(client: httpx.Client, other_client: httpx.Client) -> None:
    mine = client.post("/api/v1/jobs", json=PARKED, headers={"Idempotency-Key": "shared"}).json()["id"]
    theirs = other_client.post("/api/v1/jobs", json=PARKED, headers={"Idempotency-Key": "shared"}).json()["id"]
    assert mine != theirs


def test_key_still_being_handled_is_409(client: httpx.Client) -> None:
    from sqlalchemy import select

    from service.auth import hash_key
    from service.idempotency import fingerprint
    from service.models import ApiKey, IdempotencyRecord
    from tests.support.service import runtime

    token = client.headers["authorization"].removeprefix("Bearer ")
    with runtime().db.transaction() as session:
        owner_id = session.scalars(select(ApiKey.owner_id).where(ApiKey.key_hash == hash_key(token))).one()
        # What the first request leaves while it is still creating its job.
        session.add(IdempotencyRecord(owner_id=owner_id, key="k-3", request_hash=fingerprint(PARKED)))
    response = client.post("/api/v1/jobs", json=PARKED, headers={"Idempotency-Key": "k-3"})
    assert response.status_code == 409
    assert _jobs(client) == []


def test_concurrent_requests_with_one_key_make_one_job(client: httpx.Client) -> None:
    def post(_: int) -> httpx.Response:
        return client.post("/api/v1/jobs", json=PARKED, headers={"Idempotency-Key": "race"})

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(post, range(8)))
    assert {r.status_code for r in responses} <= {202, 409}
    ids = {r.json()["id"] for r in responses if r.status_code == 202}
    assert len(ids) == 1
    assert _jobs(client) == list(ids)
