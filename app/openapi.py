"""OpenAPI helpers: documented problem responses, headers read by hand, and a parameter's subclass."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel

from app.problems import PROBLEM_JSON
from app.schemas import Problem
from service.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

# {name} placeholders are settings, filled in by describe_limits when the app builds its document.
_DESCRIPTIONS = {
    400: "The body is not valid JSON.",
    401: "No API key, or a bad or revoked one.",
    404: "No such resource, or it belongs to another owner.",
    409: "The resource is in the wrong state for this.",
    413: "The body is too large: at most {max_body_bytes} bytes of JSON, {max_upload_bytes} bytes for an upload.",
    415: "Unsupported media type.",
    422: "The request does not validate.",
    429: "Too many requests; see Retry-After.",
    503: "A dependency is unavailable, or the work took longer than the service gives it; see Retry-After.",
}


def PROBLEMS(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {
        code: {"model": Problem, "description": _DESCRIPTIONS[code], "content": {PROBLEM_JSON: {}}} for code in codes
    }


def optional_header(name: str, description: str | None = None) -> dict[str, Any]:
    """`openapi_extra` documenting an optional string header that the route reads from the request itself,
    as FastAPI documents a `Header()` parameter. As a parameter, FastAPI validated it on every request: 140
    lines of Python a submission ran (bench request-cost, counted with a line tracer), for a value that is
    any string or none."""
    described = {"description": description} if description else {}
    schema = {"anyOf": [{"type": "string"}, {"type": "null"}], **described, "title": name}
    return {"parameters": [{**described, "in": "header", "name": name.lower(), "required": False, "schema": schema}]}


def describe_limits(document: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The OpenAPI document with this deployment's limits written into the problem descriptions."""
    values = settings.model_dump()
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for response in operation.get("responses", {}).values():
                if "{" in response.get("description", ""):
                    response["description"] = response["description"].format(**values)
    return document


def with_body_type(name: str, model: type[BaseModel]) -> Callable[[F], F]:
    """Have FastAPI parse parameter `name` as `model`, a subclass of what the function declares.

    For the spec: the function (and mypy) sees the engine's TrainSpec, FastAPI validates and documents
    the deployment's bounded subclass of it (app.schemas.bounded_spec), built when the app is.
    """

    def apply(function: F) -> F:
        signature = inspect.signature(function)
        declared = signature.parameters[name].annotation
        if not (isinstance(declared, type) and issubclass(model, declared)):
            raise TypeError(f"{model.__name__} does not extend {declared!r}, the declared type of {name}")
        parameters = [p.replace(annotation=model) if p.name == name else p for p in signature.parameters.values()]
        function.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        return function

    return apply
