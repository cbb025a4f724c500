"""Where a webhook may point: server-side request forgery refused at registration (in-process apps on
the test deployment; the sender checks again at every attempt, tests/service/test_webhooks.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

REFUSED = [
    "http://127.0.0.1:8000/hook",
    "http://localhost/hook",
    "http://10.0.0.7/hook",
    "http://192.168.1.1/hook",
    "http://172.16.0.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/hook",
    "http://0.0.0.0/hook",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[fe80::1]/hook",
    "http://224.0.0.1/hook",
]
MALFORMED = [
    "ftp://example.com/hook",
    "file:///etc/passwd",
    "http:///no-host",
    "http://user:password@example.com/hook",
    "https://example.com:99999/hook",
    "not a url",
]


@pytest.fixture
def strict(app_with: Callable[..., TestClient]) -> TestClient:
    """The production default: no network allowed beyond public addresses."""
    return app_with(webhook_allowed_networks=[])


@pytest.mark.parametrize("url", REFUSED)
def test_private_loopback_link_local_and_metadata_addresses_are_refused(strict: TestClient, url: str) -> None:
    response = strict.post("/api/v1/webhooks", json={"url": url, "events": ["job.succeeded"]})
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["errors"][0]["loc"] == ["body", "url"]
    assert "refused" in problem["detail"]


@pytest.mark.parametrize("url", MALFORMED)
def test_only_plain_http_and_https_urls(strict: TestClient, url: str) -> None:
    response = strict.post("/api/v1/webhooks", json={"url": url, "events": ["job.succeeded"]})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["body", "url"]


def test_a_setting_allows_named_networks_and_nothing_else(app_with: Callable[..., TestClient]) -> None:
    http = app_with(webhook_allowed_networks=["127.0.0.1/32"])
    allowed = http.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["job.failed"]})
    assert allowed.status_code == 201, allowed.text
    for url in ("http://127.0.0.2/hook", "http://10.0.0.1/hook", "http://[::1]/hook"):
        assert http.post("/api/v1/webhooks", json={"url": url, "events": ["job.failed"]}).status_code == 422


def test_events_must_be_known_and_the_count_is_bounded(app_with: Callable[..., TestClient]) -> None:
    http = app_with(max_webhooks_per_owner=1)
    url = "http://127.0.0.1:9/hook"
    unknown = http.post("/api/v1/webhooks", json={"url": url, "events": ["job.exploded"]})
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["loc"][:2] == ["body", "events"]
    assert http.post("/api/v1/webhooks", json={"url": url, "events": []}).status_code == 422
    assert http.post("/api/v1/webhooks", json={"url": url, "events": ["job.failed"], "x": 1}).status_code == 422
    assert http.post("/api/v1/webhooks", json={"url": url, "events": ["job.failed"]}).status_code == 201
    second = http.post("/api/v1/webhooks", json={"url": url, "events": ["job.failed"]})
    assert second.status_code == 409 and "WGAN_MAX_WEBHOOKS_PER_OWNER" in second.json()["detail"]


def test_unknown_webhooks_and_deliveries_are_404(app_with: Callable[..., TestClient]) -> None:
    http = app_with()
    hook = http.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/h", "events": ["job.failed"]}).json()
    for path in ("/api/v1/webhooks/nope", "/api/v1/webhooks/00000000-0000-0000-0000-000000000000/deliveries"):
        assert http.get(path).status_code == 404
    missing = f"{hook['links']['deliveries']}/00000000-0000-0000-0000-000000000000/redeliver"
    assert http.post(missing).status_code == 404
    assert http.get(hook["links"]["deliveries"], params={"cursor": "garbage"}).status_code == 422
