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
