"""The SSE stream: live events, exact replay with Last-Event-ID, the access_token form."""

from __future__ import annotations

import httpx

from tests.conftest import TOY_SPEC, wait_for_status
from tests.support.sse import read_events


def _final(events) -> str:
    return events[-1].data["status"]


def test_stream_is_live_then_ends_and_replays_exactly(client: httpx.Client, worker) -> None:
    job = client.post("/api/v1/jobs", json={**TOY_SPEC, "steps": 80}).json()
    live = read_events(client, f"/api/v1/jobs/{job['id']}/events")

    ids = [int(event.id) for event in live]
    assert ids == list(range(1, len(live) + 1)), "ids are consecutive, none skipped or repeated"
    assert live[0].event == "status"
    assert live[0].data == {"status": "queued", "error": None}
    assert live[-1].event == "status"
    assert _final(live) == "succeeded"
    steps = [point["step"] for event in live if event.event == "metrics" for point in event.data]
    assert steps == list(range(5, 81, 5))
    checkpoints = [event.data["step"] for event in live if event.event == "checkpoint"]
    assert checkpoints == [20, 40, 60, 80]

    # A late client gets the whole history; a reconnecting one gets exactly what it missed.
    replay = read_events(client, f"/api/v1/jobs/{job['id']}/events")
    assert [(e.id, e.event, e.data) for e in replay] == [(e.id, e.event, e.data) for e in live]
    resumed = read_events(client, f"/api/v1/jobs/{job['id']}/events", last_event_id=live[4].id)
    assert [(e.id, e.data) for e in resumed] == [(e.id, e.data) for e in live[5:]]
    # A client that already has the final event is told there is nothing more: 204, no reconnects.
    after_end = client.get(f"/api/v1/jobs/{job['id']}/events", headers={"Last-Event-ID": live[-1].id})
    assert after_end.status_code == 204
    assert after_end.content == b""


def test_reconnecting_mid_training_misses_nothing_and_repeats_nothing(client: httpx.Client, worker) -> None:
    job = client.post("/api/v1/jobs", json={**TOY_SPEC, "steps": 400, "checkpoint_every": 100}).json()
    first = read_events(client, f"/api/v1/jobs/{job['id']}/events", limit=6)
    rest = read_events(client, f"/api/v1/jobs/{job['id']}/events", last_event_id=first[-1].id)
    combined = first + rest
    assert [int(e.id) for e in combined] == list(range(1, len(combined) + 1))
    steps = [p["step"] for e in combined if e.event == "metrics" for p in e.data]
    assert steps == list(range(5, 401, 5))
    assert _final(combined) == "succeeded"


def test_stream_accepts_the_key_as_access_token_only_there(api: str, api_key: str, worker) -> None:
    with httpx.Client(base_url=api, timeout=30) as anonymous:
        created = anonymous.post("/api/v1/jobs", json=TOY_SPEC, headers={"Authorization": f"Bearer {api_key}"})
        job_id = created.json()["id"]
        events = read_events(anonymous, f"/api/v1/jobs/{job_id}/events", access_token=api_key)
        assert _final(events) == "succeeded"
        refused = anonymous.get(f"/api/v1/jobs/{job_id}", params={"access_token": api_key})
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        bad = anonymous.get(f"/api/v1/jobs/{job_id}/events", params={"access_token": "wgan_nope"})
        assert bad.status_code == 401


def test_stream_of_another_owners_job_is_404(client: httpx.Client, other_client: httpx.Client, worker) -> None:
    job = client.post("/api/v1/jobs", json=TOY_SPEC).json()
    response = other_client.get(f"/api/v1/jobs/{job['id']}/events")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    wait_for_status(client, job["id"], {"succeeded"})


def test_bad_last_event_id_is_422(client: httpx.Client, worker) -> None:
    job = client.post("/api/v1/jobs", json=TOY_SPEC).json()
    response = client.get(f"/api/v1/jobs/{job['id']}/events", headers={"Last-Event-ID": "abc"})
    assert response.status_code == 422
    wait_for_status(client, job["id"], {"succeeded"})


def test_many_open_streams_do_not_hold_database_connections_and_are_capped_per_owner(
    client: httpx.Client, other_client: httpx.Client, api: str, api_key: str
) -> None:
    import asyncio

    from tests.support.service import settings

    cap = settings().max_streams_per_owner
    job = client.post("/api/v1/jobs", json={**TOY_SPEC, "device": "cuda"}).json()  # parked: its stream stays open

    async def watch_and_probe() -> tuple[int, int, int]:
        headers = {"Authorization": f"Bearer {api_key}"}
        limits = httpx.Limits(max_connections=cap + 10)
        async with httpx.AsyncClient(base_url=api, headers=headers, timeout=30, limits=limits) as many:
            streams = [many.stream("GET", f"/api/v1/jobs/{job['id']}/events") for _ in range(cap)]
            opened = [await stream.__aenter__() for stream in streams]
            assert all(response.status_code == 200 for response in opened)
            # More streams than the database pool has connections, and the API still answers.
            probe = await many.get("/api/v1/jobs", timeout=5)
            over = await many.get(f"/api/v1/jobs/{job['id']}/events", timeout=5)
            await streams[0].__aexit__(None, None, None)
            async with many.stream("GET", f"/api/v1/jobs/{job['id']}/events") as again:
                freed = again.status_code
            for stream in streams[1:]:
                await stream.__aexit__(None, None, None)
            return probe.status_code, over.status_code, freed

    assert cap > 30, "the test opens more streams than the database pool has connections"
    probe, over, freed = asyncio.run(watch_and_probe())
    assert (probe, over, freed) == (200, 429, 200), "one over the cap is refused; closing one frees its slot"
    # Another owner's streams are their own.
    other = other_client.post("/api/v1/jobs", json={**TOY_SPEC, "device": "cuda"}).json()
    with other_client.stream("GET", f"/api/v1/jobs/{other['id']}/events") as response:
        assert response.status_code == 200
    client.post(f"/api/v1/jobs/{job['id']}/cancel")
    other_client.post(f"/api/v1/jobs/{other['id']}/cancel")


def test_a_stream_ends_at_its_lifetime_and_resuming_loses_nothing(make_stack) -> None:
    import time

    from tests.faults.conftest import FAULT_SPEC

    stack = make_stack(stream_max_seconds="1.5")
    stack.api()
    stack.worker()
    with stack.client() as client:
        job = client.post("/api/v1/jobs", json={**FAULT_SPEC, "steps": 600}).json()
        path = f"/api/v1/jobs/{job['id']}/events"
        # Each stream ends after its lifetime; resuming from its last id misses nothing and repeats nothing.
        events, last, segments = [], None, 0
        while not events or events[-1].event != "status" or events[-1].data["status"] != "succeeded":
            started = time.monotonic()
            segment = read_events(client, path, last_event_id=last, timeout=30)
            assert time.monotonic() - started < 10
            segments += 1
            events += segment
            last = events[-1].id if events else None
        assert segments >= 2
        assert [int(event.id) for event in events] == list(range(1, len(events) + 1))
        steps = [point["step"] for event in events if event.event == "metrics" for point in event.data]
        assert steps == list(range(5, 601, 5))


def test_a_revoked_keys_stream_ends(api: str) -> None:
    import subprocess
    import sys
    import time

    from tests.conftest import ENV, make_key
    from tests.support.processes import ROOT

    key = make_key()
    with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        parked = client.post("/api/v1/jobs", json={**TOY_SPEC, "device": "cuda"}).json()
        with client.stream("GET", f"/api/v1/jobs/{parked['id']}/events") as stream:
            assert stream.status_code == 200
            revoke = [sys.executable, "-m", "wgan_service", "keys", "revoke", key.split("_")[1]]
            subprocess.run(revoke, env=ENV, cwd=ROOT, check=True, capture_output=True)
            revoked = time.monotonic()
            for _ in stream.iter_lines():
                pass  # until the server ends it
            assert time.monotonic() - revoked < 5
        assert client.get(f"/api/v1/jobs/{parked['id']}").status_code == 401
