"""Listing jobs: newest first, cursor pagination without gaps or repeats, status filter."""

from __future__ import annotations

import httpx

from tests.conftest import TOY_SPEC

PARKED = {**TOY_SPEC, "device": "cuda"}


def test_pages_cover_every_job_once_newest_first(client: httpx.Client) -> None:
    made = [client.post("/api/v1/jobs", json={**PARKED, "name": f"job-{i}"}).json()["id"] for i in range(7)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/jobs", params=params).json()
        seen += [job["id"] for job in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(reversed(made))
    client.post(f"/api/v1/jobs/{made[0]}/cancel")
    queued = client.get("/api/v1/jobs", params={"status": "queued"}).json()["items"]
    cancelled = client.get("/api/v1/jobs", params={"status": "cancelled"}).json()["items"]
    assert [job["id"] for job in cancelled] == [made[0]]
    assert {job["id"] for job in queued} == set(made[1:])
    for job_id in made[1:]:
        client.post(f"/api/v1/jobs/{job_id}/cancel")


def test_bad_cursor_limit_and_status_are_422(client: httpx.Client) -> None:
    for params in ({"cursor": "!!!"}, {"limit": 0}, {"limit": 100_000}, {"status": "sleeping"}):
        response = client.get("/api/v1/jobs", params=params)
        assert response.status_code == 422, params
        assert response.headers["content-type"] == "application/problem+json"


def test_owners_see_only_their_jobs_and_admins_see_all(
    client: httpx.Client, other_client: httpx.Client, api: str
) -> None:
    from tests.conftest import make_key

    mine = client.post("/api/v1/jobs", json=PARKED).json()["id"]
    theirs = other_client.post("/api/v1/jobs", json=PARKED).json()["id"]
    listed = client.get("/api/v1/jobs").json()["items"]
    assert [job["id"] for job in listed] == [mine]
    # A job read (its columns, repositories.jobs.read) shows the job exactly as the list (ORM rows) does.
    assert client.get(f"/api/v1/jobs/{mine}").json() == listed[0]
    assert client.get(f"/api/v1/jobs/{theirs}").status_code == 404
    with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {make_key(admin=True)}"}) as admin:
        everything = {job["id"] for job in admin.get("/api/v1/jobs", params={"limit": 200}).json()["items"]}
        assert {mine, theirs} <= everything
        assert admin.get(f"/api/v1/jobs/{theirs}").status_code == 200
    client.post(f"/api/v1/jobs/{mine}/cancel")
    other_client.post(f"/api/v1/jobs/{theirs}/cancel")
