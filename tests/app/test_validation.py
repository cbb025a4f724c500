"""Every error class of the contract: problem details with the right status and the fields at fault."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import TOY_SPEC

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance"}


def assert_problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body.keys() >= PROBLEM_KEYS
    assert body["status"] == status
    assert body["instance"] == response.request.url.path
    return body


def locs(body: dict) -> list[list]:
    return [error["loc"] for error in body["errors"]]


@pytest.mark.parametrize(
    ("spec", "loc"),
    [
        ({**TOY_SPEC, "colour": "blue"}, ["body", "colour"]),
        ({"model": {"arch": "mlp"}}, ["body", "dataset"]),
        ({"dataset": {}}, ["body", "dataset"]),
        ({"dataset": {"name": "8gaussians", "id": "x"}}, ["body", "dataset"]),
        ({"dataset": {"name": "imagenet"}}, ["body", "dataset", "name"]),
        ({"dataset": {"name": "8gaussians"}, "loss": {"kind": "hinge"}}, ["body", "loss", "kind"]),
        ({"dataset": {"name": "8gaussians"}, "steps": 0}, ["body", "steps"]),
        ({"dataset": {"name": "8gaussians"}, "steps": 10**9}, ["body", "steps"]),
        ({"dataset": {"name": "8gaussians"}, "batch_size": 10**6}, ["body", "batch_size"]),
        ({"dataset": {"name": "8gaussians"}, "model": {"hidden_dim": 10**6}}, ["body", "model", "hidden_dim"]),
        ({"dataset": {"name": "8gaussians"}, "model": {"arch": "dcgan"}}, ["body", "model", "arch"]),
        (
            {"dataset": {"name": "digits"}, "model": {"arch": "dcgan", "image_size": 24}},
            ["body", "model", "image_size"],
        ),
        ({"dataset": {"name": "digits"}, "model": {"image_size": 128}}, ["body", "model", "image_size"]),
        ({"dataset": {"name": "8gaussians"}, "model": {"critic_norm": "batch"}}, ["body", "model", "critic_norm"]),
        ({"dataset": {"name": "8gaussians"}, "device": "tpu"}, ["body", "device"]),
        (
            {"dataset": {"name": "8gaussians"}, "optimizer": {"kind": "rmsprop", "betas": [0.5, 0.9]}},
            ["body", "optimizer", "betas"],
        ),
        ({"dataset": {"id": "00000000-0000-0000-0000-000000000000"}}, ["body", "dataset", "id"]),
    ],
)
def test_invalid_specs_are_422_naming_the_field(client: httpx.Client, spec: dict, loc: list) -> None:
    body = assert_problem(client.post("/api/v1/jobs", json=spec), 422)
    assert any(found[: len(loc)] == loc for found in locs(body)), locs(body)
    assert all(error["msg"] for error in body["errors"])


def test_invalid_spec_creates_nothing(client: httpx.Client) -> None:
    client.post("/api/v1/jobs", json={**TOY_SPEC, "steps": -1})
    assert client.get("/api/v1/jobs").json()["items"] == []


def test_unparseable_body_is_400(client: httpx.Client) -> None:
    response = client.post("/api/v1/jobs", content=b'{"dataset": ', headers={"Content-Type": "application/json"})
    assert_problem(response, 400)


def test_wrong_media_type_is_415(client: httpx.Client) -> None:
    response = client.post(
        "/api/v1/jobs", content=b"dataset=8gaussians", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert_problem(response, 415)
    assert_problem(client.post("/api/v1/jobs", content=b"{}", headers={"Content-Type": ""}), 415)
    for refused in ("application/jsonx", "text/json", "json", "application/"):
        assert_problem(client.post("/api/v1/jobs", content=b"{}", headers={"Content-Type": refused}), 415)


def test_json_media_types_are_read_as_rfc_9110_says(client: httpx.Client) -> None:
    body = json.dumps({**TOY_SPEC, "device": "cuda"}).encode()
    for accepted in ("Application/JSON", "application/json; charset=utf-8", "application/vnd.wgan+json ;v=1"):
        response = client.post("/api/v1/jobs", content=body, headers={"Content-Type": accepted})
        assert response.status_code == 202, (accepted, response.text)


def test_oversized_body_is_413(client: httpx.Client) -> None:
    from app.security_headers import HEADERS

    response = client.post("/api/v1/jobs", json={**TOY_SPEC, "name": "x" * 200, "padding": "y" * 200_000})
    assert_problem(response, 413)
    # Refused before the app reads the body, and still with every security header.
    assert {name: response.headers.get(name) for name in HEADERS} == HEADERS


def test_a_chunked_body_is_counted_as_it_arrives(client: httpx.Client) -> None:
    def chunks(body: bytes) -> Iterator[bytes]:
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    fits = json.dumps({**TOY_SPEC, "device": "cuda"}).encode()
    headers = {"Content-Type": "application/json"}
    # No Content-Length: the limit is enforced on the bytes as they come.
    assert client.post("/api/v1/jobs", content=chunks(fits), headers=headers).status_code == 202
    too_big = json.dumps({**TOY_SPEC, "name": "x", "padding": "y" * 200_000}).encode()
    response = client.post("/api/v1/jobs", content=chunks(too_big), headers=headers)
    assert_problem(response, 413)


def test_numbers_past_what_the_database_holds_are_4xx(client: httpx.Client) -> None:
    parked = client.post("/api/v1/jobs", json={**TOY_SPEC, "device": "cuda"}).json()
    url = f"/api/v1/jobs/{parked['id']}"
    assert_problem(client.get(f"{url}/metrics", params={"after_step": 2**63}), 422)
    assert_problem(client.get(f"{url}/metrics", params={"after_step": 2**31}), 422)
    assert client.get(f"{url}/metrics", params={"after_step": 2**31 - 1}).status_code == 200
    assert_problem(client.get(f"{url}/samples", params={"checkpoint": "9" * 30}), 404)
    for last in ("²", "9" * 5000, "null", "-1"):
        assert_problem(client.get(f"{url}/events", headers={"Last-Event-ID": last.encode("latin-1")}), 422)
    client.post(f"{url}/cancel")


def test_a_cursor_this_service_did_not_make_is_422(client: httpx.Client) -> None:
    import base64

    naive = base64.urlsafe_b64encode(b"2026-01-01T00:00:00|00000000-0000-0000-0000-000000000000").decode()
    for cursor in (naive.rstrip("="), "not-a-cursor", "x" * 512):
        assert_problem(client.get("/api/v1/jobs", params={"cursor": cursor}), 422)


def test_missing_and_bad_keys_are_401_with_bearer_challenge(api: str) -> None:
    with httpx.Client(base_url=api) as anonymous:
        for headers in ({}, {"Authorization": "Bearer wgan_0000_bad"}, {"Authorization": "Basic dXNlcjpwYXNz"}):
            response = anonymous.get("/api/v1/jobs", headers=headers)
            assert_problem(response, 401)
            assert response.headers["www-authenticate"] == "Bearer"


def test_unknown_and_foreign_jobs_are_the_same_404(client: httpx.Client, other_client: httpx.Client) -> None:
    job = client.post("/api/v1/jobs", json={**TOY_SPEC, "device": "cuda"}).json()
    foreign = assert_problem(other_client.get(f"/api/v1/jobs/{job['id']}"), 404)
    missing = assert_problem(other_client.get("/api/v1/jobs/not-a-job"), 404)
    assert foreign["title"] == missing["title"]
    assert foreign["type"] == missing["type"]
    for method, path in [
        ("POST", "cancel"),
        ("DELETE", ""),
        ("GET", "metrics"),
        ("GET", "checkpoints"),
        ("GET", "samples"),
    ]:
        url = f"/api/v1/jobs/{job['id']}/{path}".rstrip("/")
        assert other_client.request(method, url).status_code == 404
    assert client.post(f"/api/v1/jobs/{job['id']}/cancel").status_code == 202


@pytest.mark.parametrize("params", [{"n": 0}, {"n": 1025}, {"format": "gif"}, {"seed": "x"}])
def test_bad_sample_parameters_are_422(client: httpx.Client, params: dict) -> None:
    job = client.post("/api/v1/jobs", json={**TOY_SPEC, "device": "cuda"}).json()
    assert_problem(client.get(f"/api/v1/jobs/{job['id']}/samples", params=params), 422)
    client.post(f"/api/v1/jobs/{job['id']}/cancel")


def test_control_characters_are_a_clear_4xx_never_a_database_error(client: httpx.Client) -> None:
    # Postgres refuses NUL in text: such input must be answered before it reaches the database.
    parked = {**TOY_SPEC, "device": "cuda"}
    job = client.post("/api/v1/jobs", json=parked).json()
    assert_problem(client.get("/api/v1/jobs/a%00b"), 404)
    assert_problem(client.get("/api/v1/jobs/a%00b/samples"), 404)
    assert_problem(client.get("/api/v1/jobs/a%00b/events"), 404)
    assert_problem(client.get(f"/api/v1/jobs/{job['id']}/samples", params={"checkpoint": "a\x00b"}), 404)
    assert_problem(client.get(f"/api/v1/jobs/{job['id']}/samples", params={"checkpoint": "²"}), 404)
    assert_problem(client.get("/api/v1/datasets/a%00b"), 404)
    named = assert_problem(client.post("/api/v1/jobs", json={**parked, "name": "a\x00b"}), 422)
    assert named["errors"][0]["loc"][-1] == "name"
    assert_problem(client.post("/api/v1/jobs", json={**parked, "dataset": {"id": "a\x00b"}}), 422)
    assert_problem(client.get("/api/v1/jobs", params={"cursor": "MjAyNi0wMS0wMVQwMDowMDowMHxhAGI"}), 422)
    client.post(f"/api/v1/jobs/{job['id']}/cancel")
