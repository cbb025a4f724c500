"""A sample request's read kept for the same key's next requests in its process (service.recall): with its
slot kept and its generator loaded, such a request reads nothing and leaves the event loop only for its
pass, answers what a fresh read answers, spends its rate budget all the same, gives its slot back however
it ends, sees a revoked key once the read is `sample_recall_seconds` old, and is never served to another
key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from fastapi.testclient import TestClient

from app.routes.samples import RECALL_CAPACITY
from service.auth import hash_key
from service.models import ApiKey, utcnow
from service.recall import Recall
from tests.app.test_export import trained
from tests.conftest import TOY_SPEC, make_key
from tests.support.service import runtime

ASKED = {"n": 8, "seed": 5, "format": "npy"}
KEEP = 0.1


class Clock:
    """The recall's clock, moved by the test: what a request finds kept depends on nothing of the host's
    speed."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def sampling(
    client: httpx.Client, app_with: Callable[..., TestClient], **settings: Any
) -> tuple[TestClient, str, Clock]:
    """A job of the client's owner, trained, and an in-process app with `settings` and the owner's key, its
    slots kept long enough that a test's next request always finds one and its recall on a test's clock:
    the app, the job's samples URL and the clock."""
    job = trained(client, TOY_SPEC)
    key = client.headers["authorization"].removeprefix("Bearer ")
    app = app_with(key=key, sample_slot_linger_seconds=10, **settings)
    clock = Clock()
    app.app.state.sample_recall = Recall(app.app.state.sample_recall.keep, RECALL_CAPACITY, clock)
    return app, f"/api/v1/jobs/{job['id']}/samples", clock


def key_of(app: TestClient) -> str:
    return str(app.headers["authorization"]).removeprefix("Bearer ")


def revoke(key: str) -> None:
    with runtime().db.transaction() as session:
        session.query(ApiKey).filter(ApiKey.key_hash == hash_key(key)).update({"revoked_at": utcnow()})


def test_a_keys_next_request_reads_nothing_answers_the_same_and_sees_a_revocation_after_the_keep(
    client: httpx.Client, worker: Any, app_with: Callable[..., TestClient]
) -> None:
    quick, url, clock = sampling(client, app_with, rate_samples_per_minute=0, sample_recall_seconds=KEEP)
    recall, slots = quick.app.state.sample_recall, quick.app.state.sample_slots
    first = quick.get(url, params=ASKED)
    assert first.status_code == 200 and recall.hits == 0
    second = quick.get(url, params=ASKED)
    assert second.status_code == 200 and recall.hits == 1
    assert second.content == first.content and second.headers["etag"] == first.headers["etag"]
    assert second.headers["x-checkpoint-step"] == first.headers["x-checkpoint-step"]
    # Answered from the read, a 304 and a 422 give the slot back as a 200 does: kept for the next request.
    unchanged = quick.get(url, params=ASKED, headers={"If-None-Match": first.headers["etag"]})
    assert unchanged.status_code == 304 and unchanged.headers["etag"] == first.headers["etag"]
    still = quick.get(url, params={**ASKED, "format": "gif"})
    assert still.status_code == 422 and still.json()["errors"][0]["loc"] == ["query", "format"]
    assert recall.hits == 3 and slots.kept == 1
    # Another key, in the same process, is never answered from this key's read: another owner's sees no
    # such job.
    stranger = {"Authorization": f"Bearer {make_key()}"}
    assert quick.get(url, params=ASKED, headers=stranger).status_code == 404
    assert recall.hits == 3
    # Revoked, the key is still answered from its read until the read is KEEP old (which shows that those
    # requests read nothing), and refused from then on.
    revoke(key_of(quick))
    assert quick.get(url, params=ASKED).status_code == 200
    clock.now += KEEP
    late = quick.get(url, params=ASKED)
    assert late.status_code == 401 and late.headers["www-authenticate"].startswith("Bearer")


def test_with_no_recall_a_revoked_key_is_refused_at_once(
    client: httpx.Client, worker: Any, app_with: Callable[..., TestClient]
) -> None:
    strict, url, _ = sampling(client, app_with, rate_samples_per_minute=0, sample_recall_seconds=0)
    assert strict.get(url, params=ASKED).status_code == 200
    revoke(key_of(strict))
    assert strict.get(url, params=ASKED).status_code == 401
    assert strict.app.state.sample_recall.hits == 0


def test_a_request_answered_from_a_recalled_read_spends_its_rate_budget(
    client: httpx.Client, worker: Any, app_with: Callable[..., TestClient]
) -> None:
    # No Redis for this process (as the embedded default): its budgets count in its own memory, so spending
    # one needs no round trip, and a recalled read serves the request on the event loop.
    alone, url, _ = sampling(client, app_with, events_url="", rate_samples_per_minute=2, sample_recall_seconds=KEEP)
    assert [alone.get(url, params=ASKED).status_code for _ in range(2)] == [200, 200]
    assert alone.app.state.sample_recall.hits == 1
    refused = alone.get(url, params=ASKED)
    assert refused.status_code == 429 and "sample requests a minute" in refused.json()["detail"]
    # Refused, it gave its slot back.
    assert alone.app.state.sample_recall.hits == 2 and alone.app.state.sample_slots.kept == 1
    # Where the budget is shared through Redis, spending it is a round trip: the read is not recalled.
    shared = app_with(
        key=key_of(alone), rate_samples_per_minute=100, sample_recall_seconds=KEEP, sample_slot_linger_seconds=10
    )
    assert [shared.get(url, params=ASKED).status_code for _ in range(2)] == [200, 200]
    assert shared.app.state.sample_recall.hits == 0
