"""A route's answer, serialized to JSON in the route's own thread-pool trip.

FastAPI validates and serializes what a plain `def` route returns against its `response_model` in a
second thread-pool trip of its own (fastapi.routing.serialize_response); a route that returns a Response
is sent as it is. The models a route builds were validated when they were made, so the second trip only
cost the hop (bench request-cost). Routes keep `response_model` for the OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Response, status
from pydantic import BaseModel

JSON = "application/json"


def reply(
    model: BaseModel, status_code: int = status.HTTP_200_OK, headers: Mapping[str, str] | None = None
) -> Response:
    """`model` as FastAPI would have sent it: by alias, nothing left out."""
    return Response(model.model_dump_json(by_alias=True), status_code=status_code, headers=headers, media_type=JSON)
