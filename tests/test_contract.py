"""docs/API.md, the contract other services build on, and the running service's OpenAPI document agree."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from app.main import create_app
from tests.support.service import settings

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = (ROOT / "docs" / "API.md").read_text()
ENDPOINT = re.compile(r"`(GET|POST|DELETE|PUT|PATCH) (/[^\s`?]*)")


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return create_app(settings()).openapi()


def _normalised(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def test_every_endpoint_is_in_both_the_contract_and_the_openapi_document(openapi: dict[str, Any]) -> None:
    documented = {(method, _normalised(path)) for method, path in ENDPOINT.findall(CONTRACT)}
    served = {(method.upper(), _normalised(path)) for path, ops in openapi["paths"].items() for method in ops}
    assert documented - served == set(), "in docs/API.md but not served"
    assert served - documented == set(), "served but not in docs/API.md"


def _example(after: str) -> dict[str, Any]:
    """The first JSON block after the heading text `after`, with `{ ...prose... }` placeholders emptied."""
    block = re.search(re.escape(after) + r".*?```json\n(.*?)```", CONTRACT, flags=re.S)
    assert block, after
    return json.loads(re.sub(r"\{ \.\.\.[^}]*\}", "{}", block.group(1)))


def _schema(openapi: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema or "anyOf" in schema:
        if "$ref" in schema:
            schema = openapi["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        else:
            schema = next(option for option in schema["anyOf"] if option.get("type") != "null")
    return schema


def _missing(openapi: dict[str, Any], example: dict[str, Any], schema: dict[str, Any], at: str = "") -> list[str]:
    properties = _schema(openapi, schema).get("properties", {})
    missing = []
    for key, value in example.items():
        if key not in properties:
            missing.append(f"{at}{key}")
        elif isinstance(value, dict) and value:
            missing += _missing(openapi, value, properties[key], f"{at}{key}.")
    return missing


@pytest.mark.parametrize(("heading", "model"), [("Job spec", "JobSpec"), ("Job:", "Job")])
def test_every_field_of_the_contracts_examples_is_in_the_models(
    openapi: dict[str, Any], heading: str, model: str
) -> None:
    example = _example(heading)
    assert _missing(openapi, example, {"$ref": f"#/components/schemas/{model}"}) == []


def test_the_contracts_statuses_are_the_ones_the_service_enumerates(openapi: dict[str, Any]) -> None:
    statuses = re.search(r"`status` is one of (.*?)\.", CONTRACT)
    assert statuses
    documented = re.findall(r"`(\w+)`", statuses.group(1))
    job = _schema(openapi, {"$ref": "#/components/schemas/Job"})
    assert _schema(openapi, job["properties"]["status"])["enum"] == documented


def test_the_documents_creations_take_an_idempotency_key_and_every_api_route_the_bearer_key(
    openapi: dict[str, Any],
) -> None:
    # Both are read by hand, not as FastAPI parameters (app.deps): the document must still say so.
    for path in ("/api/v1/jobs", "/api/v1/experiments"):
        (header,) = [p for p in openapi["paths"][path]["post"]["parameters"] if p["in"] == "header"]
        assert header["name"] == "idempotency-key" and header["required"] is False
        assert {"type": "string"} in header["schema"]["anyOf"]
    assert openapi["components"]["securitySchemes"] == {
        "HTTPBearer": {"type": "http", "scheme": "bearer", "description": "An API key from `wgan-service keys create`."}
    }
    unguarded = [
        f"{method.upper()} {path}"
        for path, operations in openapi["paths"].items()
        if path.startswith("/api/v1/")
        for method, operation in operations.items()
        if operation.get("security") != [{"HTTPBearer": []}]
    ]
    assert unguarded == []
