"""OpenAPI helpers: documented problem responses, and the JSON content-type check (415)."""

from __future__ import annotations

from email.message import Message
from typing import Any

from fastapi import Request
from fastapi.exceptions import HTTPException

from app.problems import PROBLEM_JSON
from app.schemas import Problem
from service.settings import get_settings

_settings = get_settings()

_DESCRIPTIONS = {
    400: "The body is not valid JSON.",
    401: "No API key, or a bad or revoked one.",
    404: "No such resource, or it belongs to another owner.",
    409: "The resource is in the wrong state for this.",
    413: f"The body is too large: at most {_settings.max_body_bytes} bytes of JSON, "
    f"{_settings.max_upload_bytes} bytes for an upload.",
    415: "Unsupported media type.",
    422: "The request does not validate.",
    429: "Too many requests; see Retry-After.",
    503: "A dependency is unavailable.",
}


def PROBLEMS(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {
        code: {"model": Problem, "description": _DESCRIPTIONS[code], "content": {PROBLEM_JSON: {}}} for code in codes
    }


def require_json(request: Request) -> None:
    content_type = request.headers.get("content-type")
    if content_type is None:
        raise HTTPException(415, "send the body as application/json")
    message = Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    if message.get_content_maintype() != "application" or not (subtype == "json" or subtype.endswith("+json")):
        raise HTTPException(415, f"send the body as application/json, not {message.get_content_type()}")
