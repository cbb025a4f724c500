"""Query parameters read by hand (app.query): documented as FastAPI documents them, validated as it does."""

# No `from __future__ import annotations`: FastAPI reads the local model in an endpoint's annotation.
from collections.abc import Callable
from typing import Annotated, Any

import pytest
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient
from pydantic import BaseModel

from app.query import query_parameters, read_query
from app.routes.samples import bounded_query
from tests.support.service import settings


def _parameters(app: FastAPI) -> list[dict[str, Any]]:
    (operation,) = [ops["get"] for ops in app.openapi()["paths"].values()]
    parameters: list[dict[str, Any]] = operation["parameters"]
    return parameters


def test_the_samples_query_is_documented_as_fastapi_documents_the_same_query_parameters() -> None:
    model = bounded_query(settings())
    declared, by_hand = FastAPI(), FastAPI()

    # FastAPI's own documentation of the model's fields as query parameters (a query parameter model).
    @declared.get("/samples")
    async def as_parameters(query: Annotated[model, Query()]) -> None:  # type: ignore[valid-type]
        return None

    @by_hand.get("/samples", openapi_extra={"parameters": query_parameters(model)})
    async def read_by_hand() -> None:
        return None

    documented = _parameters(by_hand)
    assert documented == _parameters(declared)
    by_name = {parameter["name"]: parameter for parameter in documented}
    assert list(by_name) == ["n", "seed", "checkpoint", "format", "interpolate", "frames", "path"]
    assert by_name["n"]["schema"]["maximum"] == settings().max_samples
    assert by_name["frames"]["schema"]["maximum"] == settings().max_walk_frames


class _Page(BaseModel):
    size: Annotated[int, Query(ge=1, le=10)] = 5
    name: str | None = None


def _read(query_string: bytes) -> _Page:
    request = Request({"type": "http", "method": "GET", "path": "/", "query_string": query_string, "headers": []})
    return read_query(request, _Page)


def test_the_last_of_a_repeated_name_counts_and_unknown_names_are_ignored() -> None:
    assert _read(b"size=2&size=7&other=1") == _Page(size=7)
    assert _read(b"") == _Page()


def test_a_bad_value_is_a_validation_error_at_its_query_parameter() -> None:
    with pytest.raises(RequestValidationError) as raised:
        _read(b"size=11&name=x")
    (error,) = raised.value.errors()
    assert error["loc"] == ("query", "size")
    assert error["msg"] == "Input should be less than or equal to 10"


def test_the_samples_route_answers_a_bad_query_with_the_usual_422(app_with: Callable[..., TestClient]) -> None:
    client = app_with()
    response = client.get(
        "/api/v1/jobs/no-such-job/samples", params={"n": settings().max_samples + 1, "format": "tiff"}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    errors = {tuple(error["loc"]): error["msg"] for error in response.json()["errors"]}
    assert errors == {
        ("query", "n"): f"Input should be less than or equal to {settings().max_samples}",
        ("query", "format"): "Input should be 'png', 'json', 'npy', 'gif' or 'webp'",
    }
    # A good query goes on to the job's lookup.
    assert client.get("/api/v1/jobs/no-such-job/samples", params={"n": 1}).status_code == 404
