"""OpenAPI helpers: documented problem responses, and the JSON content-type check (415)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import HTTPException
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


async def require_json(request: Request) -> None:
    content_type = request.headers.get("content-type")
    if content_type is None:
        raise HTTPException(415, "send the body as application/json")
    # The media type alone, as RFC 9110 §8.3.1 reads it: case-insensitive, parameters after ';' set aside.
    media_type = content_type.split(";", 1)[0].strip().lower()
    kind, _, subtype = media_type.partition("/")
    if kind != "application" or not (subtype == "json" or subtype.endswith("+json")):
        raise HTTPException(415, f"send the body as application/json, not {media_type or 'an empty type'}")


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
