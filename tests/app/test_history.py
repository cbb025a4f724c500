"""The downsampled history through the real worker and API: it agrees with the full metric pages, and the
event stream follows on from its last_event_id missing nothing, as the dashboard relies on."""

from __future__ import annotations

import httpx

from tests.conftest import TOY_SPEC, wait_for_status
from tests.support.sse import read_events


def _all_metrics(client: httpx.Client, job_id: str) -> list[dict]:
    points: list[dict] = []
    after = 0
    while True:
        page = client.get(f"/api/v1/jobs/{job_id}/metrics", params={"after_step": after, "limit": 7}).json()
        points += page["items"]
        if page["next_after_step"] is None:
            return points
        after = page["next_after_step"]


def test_history_agrees_with_the_points_and_the_stream_follows_on_from_it(client: httpx.Client, worker) -> None:
    job = client.post("/api/v1/jobs", json={**TOY_SPEC, "steps": 120, "evaluate": True}).json()
    wait_for_status(client, job["id"], {"succeeded"})
    points = _all_metrics(client, job["id"])
    assert [p["step"] for p in points] == list(range(5, 121, 5))  # paged in sevens: none lost, none repeated

    history = client.get(f"/api/v1/jobs/{job['id']}/metrics/history", params={"buckets": 5}).json()
    assert len(history["count"]) <= 5 and sum(history["count"]) == history["points"] == len(points)
    by_step = {p["step"]: p for p in points}
    for i, (first, last) in enumerate(zip(history["first_step"], history["last_step"], strict=True)):
        inside = [p for p in points if first <= p["step"] <= last]
        for name in ("critic_loss", "wasserstein_estimate", "seconds_per_step"):
            series = history["series"][name]
            assert series["min"][i] == min(p[name] for p in inside)
            assert series["max"][i] == max(p[name] for p in inside)
            assert series["last"][i] == by_step[last][name]
    measured = history["measured"]
    assert measured["step"] and measured["measures"] == [by_step[step]["measures"] for step in measured["step"]]
    assert measured["step"][-1] == points[-1]["step"]  # the final checkpoint's

    # The history was read after the job finished: its last event is the final status, so a stream
    # started there has nothing to send, and one started an event earlier sends just that status.
    events = read_events(client, f"/api/v1/jobs/{job['id']}/events")
    assert history["last_event_id"] == int(events[-1].id)
    url = f"/api/v1/jobs/{job['id']}/events"
    assert client.get(url, params={"last_event_id": history["last_event_id"]}).status_code == 204

    def stream(params: dict, headers: dict | None = None) -> str:
        with client.stream("GET", url, params=params, headers=headers or {}) as response:
            assert response.status_code == 200
            return response.read().decode()

    one_before = stream({"last_event_id": history["last_event_id"] - 1})
    assert one_before.count("event: ") == 1 and "event: status" in one_before and '"succeeded"' in one_before
    # The browser's own Last-Event-ID (a reconnect) wins over the position the page first asked for.
    reconnect = stream({"last_event_id": 0}, {"Last-Event-ID": events[-2].id})
    assert reconnect.count("event: ") == 1 and '"succeeded"' in reconnect


def test_history_of_another_owners_job_is_404_and_bad_bounds_are_422(
    client: httpx.Client, other_client: httpx.Client, worker
) -> None:
    job = client.post("/api/v1/jobs", json=TOY_SPEC).json()
    assert other_client.get(f"/api/v1/jobs/{job['id']}/metrics/history").status_code == 404
    for params in ({"buckets": 0}, {"buckets": 10**6}, {"from_step": -1}, {"to_step": "x"}):
        answer = client.get(f"/api/v1/jobs/{job['id']}/metrics/history", params=params)
        assert answer.status_code == 422, params
    empty = client.get(f"/api/v1/jobs/{job['id']}/metrics/history", params={"from_step": 10**6}).json()
    assert (empty["points"], empty["count"]) == (0, [])
