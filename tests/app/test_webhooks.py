"""Webhooks against the real stack: the API, a training worker, the webhook sender process and real
receivers on 127.0.0.1 (allowed in the test settings), verified with the Standard Webhooks library."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from service import webhooks
from service.models import Webhook as WebhookRow
from service.states import WebhookEvent
from tests.conftest import TOY_SPEC, wait_for, wait_for_status
from tests.support.receivers import Received, closed_port_url, receiving
from tests.support.service import runtime

pytestmark = pytest.mark.usefixtures("worker", "webhook_sender")
ALL = [event.value for event in WebhookEvent]


def register(http: httpx.Client, url: str, events: list[str]) -> dict[str, Any]:
    response = http.post("/api/v1/webhooks", json={"url": url, "events": events})
    assert response.status_code == 201, response.text
    assert response.headers["location"] == response.json()["links"]["self"]
    return response.json()


def verified(secret: str, item: Received) -> Any:
    """The body, if its signature and timestamp pass the reference library's checks (it raises if not)."""
    return Webhook(secret).verify(item.body, item.headers)


def deliveries(http: httpx.Client, hook: dict[str, Any]) -> list[dict[str, Any]]:
    response = http.get(hook["links"]["deliveries"])
    assert response.status_code == 200, response.text
    return response.json()["items"]


def settled(http: httpx.Client, hook: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """The webhook's deliveries once `count` exist and none is pending any more."""

    def check() -> list[dict[str, Any]] | None:
        found = deliveries(http, hook)
        return found if len(found) >= count and all(d["status"] != "pending" for d in found) else None

    return wait_for(check, 60, f"{count} settled deliveries")


def test_a_jobs_life_arrives_signed_with_the_job_as_rest_shows_it(client: httpx.Client) -> None:
    with receiving() as receiver:
        hook = register(client, receiver.url, ALL)
        assert hook["secret"].startswith("whsec_")
        assert "secret" not in client.get(hook["links"]["self"]).json()
        job = client.post("/api/v1/jobs", json=TOY_SPEC).json()
        wait_for_status(client, job["id"], {"succeeded"})
        checkpoints = client.get(f"/api/v1/jobs/{job['id']}/checkpoints").json()["items"]

        # Deliveries run side by side, so they may arrive in any order (job.succeeded before job.started, on a
        # busy host): wait for all of them. A body's timestamp is its event's time.
        def all_arrived() -> bool:
            life = receiver.of_type("job.started") and receiver.of_type("job.succeeded")
            return bool(life) and len(receiver.of_type("checkpoint.created")) >= len(checkpoints)

        wait_for(all_arrived, 30, "every delivery of the job's life at the receiver")
        bodies = sorted((verified(hook["secret"], item) for item in receiver.received), key=lambda b: b["timestamp"])
        kinds = [body["type"] for body in bodies]
        assert kinds[0] == "job.started" and kinds[-1] == "job.succeeded"
        assert kinds.count("job.started") == 1 and kinds.count("job.succeeded") == 1
        # The body is the job as GET returns it, once it has finished.
        assert bodies[-1]["data"] == client.get(f"/api/v1/jobs/{job['id']}").json()
        assert bodies[0]["data"]["status"] == "running" and bodies[0]["data"]["id"] == job["id"]
        sent = [body["data"] for body in bodies if body["type"] == "checkpoint.created"]
        assert {c["checkpoint"]["id"] for c in sent} == {c["id"] for c in checkpoints}
        assert all(c["job_id"] == job["id"] and c["summary"]["checkpoints"] >= 1 for c in sent)
        for item in receiver.received:
            assert item.headers["webhook-id"].startswith("msg_")
            assert item.headers["content-type"] == "application/json"

        listed = settled(client, hook, len(receiver.received))
        assert {d["status"] for d in listed} == {"delivered"}
        assert all(d["attempts"] == 1 and d["last_status_code"] == 200 for d in listed)
        assert {d["message_id"] for d in listed} == {item.headers["webhook-id"] for item in receiver.received}


def test_a_failing_receiver_gets_the_same_message_again_until_it_answers(client: httpx.Client) -> None:
    with receiving(lambda n: 500 if n < 2 else 200) as receiver:
        hook = register(client, receiver.url, ["job.succeeded"])
        job = client.post("/api/v1/jobs", json=TOY_SPEC).json()
        wait_for_status(client, job["id"], {"succeeded"})
        [delivery] = settled(client, hook, 1)
        assert delivery["status"] == "delivered"
        assert delivery["attempts"] == 3 and delivery["last_status_code"] == 200
        assert len(receiver.received) == 3
        assert len({item.headers["webhook-id"] for item in receiver.received}) == 1
        assert len({item.body for item in receiver.received}) == 1
        for item in receiver.received:
            verified(hook["secret"], item)
        # Redelivery: a new delivery of the same message, sent again.
        again = client.post(f"{hook['links']['deliveries']}/{delivery['id']}/redeliver")
        assert again.status_code == 202, again.text
        assert again.json()["message_id"] == delivery["message_id"] and again.json()["id"] != delivery["id"]
        wait_for(lambda: len(receiver.received) == 4, 30, "the redelivery")
        assert receiver.received[-1].headers["webhook-id"] == delivery["message_id"]


def test_hanging_down_and_redirecting_receivers_hold_up_nothing(client: httpx.Client) -> None:
    with receiving() as good, receiving(lambda _: None) as hanging, receiving(lambda _: 302) as redirecting:
        redirecting.location = good.url
        hooks = {
            "hanging": register(client, hanging.url, ["job.succeeded"]),
            "down": register(client, closed_port_url(), ["job.succeeded"]),
            "redirecting": register(client, redirecting.url, ["job.succeeded"]),
            "good": register(client, good.url, ["job.succeeded"]),
        }
        job = client.post("/api/v1/jobs", json=TOY_SPEC).json()
        wait_for_status(client, job["id"], {"succeeded"})
        timeout = runtime().settings.webhook_timeout_seconds
        # Deliveries run side by side: either may reach its receiver first.
        wait_for(lambda: good.received and hanging.received, 30, "the good and the hanging receivers' deliveries")
        # The good one did not wait for the hanging one's request to run out its time.
        assert good.received[0].at < hanging.received[0].at + timeout
        assert len(good.received) == 1, "the redirect was followed"

        attempts = runtime().settings.webhook_max_attempts
        for name in ("hanging", "down", "redirecting"):
            [delivery] = settled(client, hooks[name], 1)
            assert delivery["status"] == "failed" and delivery["attempts"] == attempts, (name, delivery)
            assert delivery["next_attempt_at"] is None
        assert settled(client, hooks["hanging"], 1)[0]["last_error"] == f"no answer within {timeout:g} s"
        down = settled(client, hooks["down"], 1)[0]
        assert down["last_status_code"] is None and "Connect" in down["last_error"]
        redirected = settled(client, hooks["redirecting"], 1)[0]
        assert redirected["last_status_code"] == 302 and "redirects are not followed" in redirected["last_error"]
        assert len(hanging.received) == attempts and len(redirecting.received) == attempts
        assert len(good.received) == 1


def test_an_experiment_says_when_it_has_finished(client: httpx.Client) -> None:
    with receiving() as receiver:
        hook = register(client, receiver.url, ["experiment.finished"])
        base = {**TOY_SPEC, "steps": 20}
        made = client.post("/api/v1/experiments", json={"name": "hooked", "base": base, "grid": {"seed": [0, 1]}})
        assert made.status_code == 202, made.text
        [item] = wait_for(lambda: receiver.of_type("experiment.finished"), 60, "experiment.finished")
        data = verified(hook["secret"], item)["data"]
        assert data["id"] == made.json()["id"] and data["finished"] is True
        assert data["counts"] == {"succeeded": 2}
        assert data == client.get(f"/api/v1/experiments/{data['id']}").json()


def test_a_committed_delivery_whose_task_never_left_is_sent_by_the_sweep(client: httpx.Client) -> None:
    """The outbox: rows written without their task being sent (as if the broker was down after commit)."""
    with receiving() as receiver:
        hook = register(client, receiver.url, ["job.failed"])
        rt = runtime()
        with rt.db.transaction() as session:
            owner_id = session.get_one(WebhookRow, hook["id"]).owner_id
            outbox = webhooks.Outbox(session)
            outbox.add(owner_id, WebhookEvent.JOB_FAILED, lambda: {"id": "a job"})
            outbox.add(owner_id, WebhookEvent.JOB_SUCCEEDED, lambda: {"id": "not subscribed"})
            assert len(outbox.made) == 1
        wait_for(lambda: receiver.received, 30, "the swept delivery")
        assert verified(hook["secret"], receiver.received[0]) == {
            "type": "job.failed",
            "timestamp": receiver.received[0].json["timestamp"],
            "data": {"id": "a job"},
        }
        # The receiver has the request before the sender records its answer: wait for the record.
        assert [(d["id"], d["status"]) for d in settled(client, hook, 1)] == [(outbox.made[0], "delivered")]


def test_webhooks_belong_to_their_owner(client: httpx.Client, other_client: httpx.Client) -> None:
    with receiving() as receiver:
        hook = register(client, receiver.url, ["job.succeeded"])
        for path in (hook["links"]["self"], hook["links"]["deliveries"]):
            assert other_client.get(path).status_code == 404
        assert other_client.delete(hook["links"]["self"]).status_code == 404
        assert other_client.get("/api/v1/webhooks").json()["items"] == []
        # The other owner's job is not this owner's news.
        job = other_client.post("/api/v1/jobs", json={**TOY_SPEC, "steps": 10}).json()
        wait_for_status(other_client, job["id"], {"succeeded"})
        assert deliveries(client, hook) == []
        assert [h["id"] for h in client.get("/api/v1/webhooks").json()["items"]] == [hook["id"]]
        assert client.delete(hook["links"]["self"]).status_code == 204
        assert client.get(hook["links"]["self"]).status_code == 404
