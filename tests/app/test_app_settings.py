"""An app is built from the Settings it is given: two apps with different limits live side by side in
one process, each validating and documenting its own, with no environment variables involved."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.conftest import TOY_SPEC, make_key
from tests.support.service import settings


def _client(**limits: Any) -> TestClient:
    return TestClient(create_app(settings().model_copy(update=limits)))


@pytest.fixture
def strict(database: str) -> Iterator[TestClient]:
    with _client(max_steps=50, max_list_limit=7, max_samples=9, max_hidden_dim=32, max_body_bytes=2048) as client:
        client.headers["Authorization"] = f"Bearer {make_key()}"
        yield client


@pytest.fixture
def roomy(database: str) -> Iterator[TestClient]:
    with _client() as client:
        client.headers["Authorization"] = f"Bearer {make_key()}"
        yield client


def test_each_app_documents_its_own_limits(strict: TestClient, roomy: TestClient) -> None:
    tight, default = strict.get("/openapi.json").json(), roomy.get("/openapi.json").json()
    spec = tight["components"]["schemas"]["JobSpec"]["properties"]
    assert spec["steps"]["maximum"] == 50
    assert default["components"]["schemas"]["JobSpec"]["properties"]["steps"]["maximum"] == settings().max_steps
    model = tight["components"]["schemas"][spec["model"]["$ref"].rsplit("/", 1)[1]]["properties"]["hidden_dim"]
    assert any(option.get("maximum") == 32 for option in model["anyOf"])
    limit = next(p for p in tight["paths"]["/api/v1/jobs"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"]["maximum"] == 7
    n = next(p for p in tight["paths"]["/api/v1/jobs/{job_id}/samples"]["get"]["parameters"] if p["name"] == "n")
    assert n["schema"]["maximum"] == 9
    too_large = tight["paths"]["/api/v1/jobs"]["post"]["responses"]["413"]["description"]
    assert "at most 2048 bytes of JSON" in too_large


def test_each_app_enforces_its_own_limits(strict: TestClient, roomy: TestClient) -> None:
    parked = {**TOY_SPEC, "device": "cuda", "steps": 40}  # previews only: nothing is queued
    over = strict.post("/api/v1/jobs/preview", json={**parked, "steps": 51})
    assert over.status_code == 422
    assert [error["loc"] for error in over.json()["errors"]] == [["body", "steps"]]
    wide = strict.post("/api/v1/jobs/preview", json={**parked, "model": {"hidden_dim": 33}})
    assert [error["loc"] for error in wide.json()["errors"]] == [["body", "model", "hidden_dim"]]
    assert strict.post("/api/v1/jobs/preview", json={**parked, "steps": 50}).status_code == 200
    assert roomy.post("/api/v1/jobs/preview", json={**parked, "steps": 51}).status_code == 200
    assert strict.get("/api/v1/jobs", params={"limit": 8}).status_code == 422
    assert roomy.get("/api/v1/jobs", params={"limit": 8}).status_code == 200
    big = strict.post("/api/v1/jobs/preview", json={**parked, "name": "x" * 3000})
    assert big.status_code == 413
