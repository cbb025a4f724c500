"""Health, readiness, Prometheus metrics, security headers and the OpenAPI document."""

from __future__ import annotations

import httpx
import pytest
import torch

from tests.conftest import TOY_SPEC, wait_for_status

CONTRACT = {
    ("post", "/api/v1/jobs"),
    ("get", "/api/v1/jobs"),
    ("get", "/api/v1/jobs/{job_id}"),
    ("post", "/api/v1/jobs/{job_id}/cancel"),
    ("delete", "/api/v1/jobs/{job_id}"),
    ("get", "/api/v1/jobs/{job_id}/metrics"),
    ("get", "/api/v1/jobs/{job_id}/events"),
    ("get", "/api/v1/jobs/{job_id}/checkpoints"),
    ("get", "/api/v1/jobs/{job_id}/samples"),
    ("get", "/api/v1/datasets"),
    ("post", "/api/v1/datasets"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
}


def test_health_and_readiness(api: str) -> None:
    assert httpx.get(f"{api}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{api}/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}


def test_prometheus_metrics(client: httpx.Client, api: str, worker) -> None:
    job = client.post("/api/v1/jobs", json=TOY_SPEC).json()
    wait_for_status(client, job["id"], {"succeeded"})
    text = httpx.get(f"{api}/metrics").text
    assert 'wgan_jobs{status="succeeded"}' in text
    assert 'wgan_http_requests_total{method="POST",route="/api/v1/jobs",status="202"}' in text
    assert 'wgan_http_request_seconds_bucket{le="0.01",method="GET",route="/api/v1/jobs/{job_id}"}' in text
    assert 'wgan_queue_depth{queue="cpu"}' in text


def test_request_metrics_have_bounded_labels(api: str) -> None:
    for method in ("BREW", "X-Y-Z", "PROPFIND"):
        httpx.request(method, f"{api}/api/v1/nowhere/{method}")
    text = httpx.get(f"{api}/metrics").text
    assert 'wgan_http_requests_total{method="other",route="unmatched",status="404"}' in text
    assert "BREW" not in text and "/nowhere" not in text


def test_security_headers(api: str) -> None:
    response = httpx.get(f"{api}/healthz")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "'unsafe-inline'" not in response.headers["content-security-policy"]
    assert "access-control-allow-origin" not in httpx.get(f"{api}/healthz", headers={"Origin": "https://x"}).headers


def test_openapi_describes_the_contract_with_real_models(api: str) -> None:
    document = httpx.get(f"{api}/openapi.json").json()
    found = {(method, path) for path, item in document["paths"].items() for method in item}
    assert found >= CONTRACT
    create = document["paths"]["/api/v1/jobs"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/JobSpec")
    assert "202" in create["responses"]
    assert "422" in create["responses"]
    spec = document["components"]["schemas"]["JobSpec"]
    assert spec["properties"]["steps"]["maximum"] > 0  # limits from settings are in the schema
    status = document["components"]["schemas"]["Job"]["properties"]["status"]["$ref"].rsplit("/", 1)[1]
    assert document["components"]["schemas"][status]["enum"] == [
        "queued",
        "running",
        "succeeded",
        "failed",
        "cancelled",
    ]
    samples = document["paths"]["/api/v1/jobs/{job_id}/samples"]["get"]
    assert {"image/png", "application/json", "application/octet-stream"} <= samples["responses"]["200"][
        "content"
    ].keys()
    assert (
        document["paths"]["/api/v1/jobs/{job_id}/events"]["get"]["responses"]["200"]["content"].get("text/event-stream")
        is not None
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="this host has a GPU to sample on")
def test_an_api_told_to_sample_on_a_missing_gpu_refuses_to_start() -> None:
    from app.main import create_app
    from tests.support.service import settings
    from wgan.devices import DeviceUnavailable

    with pytest.raises(DeviceUnavailable, match="WGAN_SAMPLE_DEVICE"):
        create_app(settings().model_copy(update={"sample_device": "cuda"}))


def test_metrics_need_their_token_when_one_is_set_and_are_off_in_production_without(app_with) -> None:
    guarded = app_with(metrics_token="scrape-me")
    guarded.headers.pop("Authorization")
    assert guarded.get("/metrics").status_code == 401
    assert guarded.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert guarded.get("/metrics", headers={"Authorization": "Bearer scrape-me"}).status_code == 200
    assert app_with(environment="production").get("/metrics").status_code == 404


def _queued(text: str) -> float:
    line = next(line for line in text.splitlines() if line.startswith('wgan_jobs{status="queued"}'))
    return float(line.split()[-1])


def test_state_metrics_are_read_at_most_once_per_cache_period(app_with) -> None:
    cached, fresh = app_with(ops_cache_seconds=60), app_with(ops_cache_seconds=0)
    before_cached, before_fresh = _queued(cached.get("/metrics").text), _queued(fresh.get("/metrics").text)
    job = cached.post("/api/v1/jobs", json={**TOY_SPEC, "device": "cuda"}).json()  # parked on the gpu queue
    assert _queued(cached.get("/metrics").text) == before_cached, "within the period: no new read"
    assert _queued(fresh.get("/metrics").text) == before_fresh + 1
    cached.post(f"/api/v1/jobs/{job['id']}/cancel")


def test_an_access_token_never_reaches_the_logs(make_stack) -> None:
    stack = make_stack()
    api = stack.api()
    key = stack.key()
    with httpx.Client(base_url=stack.api_url, timeout=30) as anonymous:
        parked = anonymous.post(
            "/api/v1/jobs", json={**TOY_SPEC, "device": "cuda"}, headers={"Authorization": f"Bearer {key}"}
        ).json()
        with anonymous.stream("GET", f"/api/v1/jobs/{parked['id']}/events", params={"access_token": key}) as stream:
            assert stream.status_code == 200
    import time

    deadline = time.monotonic() + 10
    while "access_token=[redacted]" not in api.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "access_token=[redacted]" in api.log()
    assert key not in api.log()
    # The secret is URL-safe base64, which may hold "_": all of it after the visible prefix.
    assert key.split("_", 2)[2] not in api.log()
