"""Query parameters a busy route reads from the request itself: one pydantic model validates them all at
once, and documents them as FastAPI documents `Query()` parameters.

As parameters of the endpoint, FastAPI inspected each one's annotation on every request (its origin, its
aliases, whether it is a sequence) before validating it alone: for the seven of GET /samples, about 900
lines of Python a request (bench sampling, counted with a line tracer), where one model's validation is
a single call into pydantic-core. The answer to bad input is the same 422: the same errors, at the same
places ("query", name), through the same handler (app.problems).
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def read_query(request: Request, model: type[M]) -> M:
    """The request's query string as `model` (the last value of a repeated name, as FastAPI takes it);
    RequestValidationError where it does not validate."""
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        errors = [{**error, "loc": ("query", *error["loc"])} for error in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """OpenAPI parameters (for a route's `openapi_extra`) documenting `model`'s fields, in the shape FastAPI
    gives a `Query()` parameter: its JSON schema, and its description beside it."""
    properties = model.model_json_schema()["properties"]
    parameters = []
    for name, field in model.model_fields.items():
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": field.is_required(),
            "schema": properties[name],
        }
        if field.description:
            parameter["description"] = field.description
        parameters.append(parameter)
    return parameters
