"""The dashboard at `/`, the interactive API docs at `/docs`, and their vendored scripts and styles under /static."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

STATIC = Path(__file__).resolve().parent.parent / "static"
# Browsers revalidate (a cheap 304 by ETag) rather than guess a lifetime, so after an upgrade a page
# never runs a mix of old and new modules.
REVALIDATE = "no-cache"


class RevalidatedStaticFiles(StaticFiles):
    def file_response(
        self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.setdefault("Cache-Control", REVALIDATE)
        return response


router = APIRouter(tags=["dashboard"])
router.mount("/static", RevalidatedStaticFiles(directory=STATIC), name="static")


@router.get("/", include_in_schema=False)
def dashboard() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html", headers={"Cache-Control": REVALIDATE})


@router.get("/docs", include_in_schema=False)
def api_docs() -> FileResponse:
    # Under the same CSP as every page: Swagger UI needs no inline script (its start-up is static/js/api-docs.js).
    return FileResponse(STATIC / "docs.html", media_type="text/html", headers={"Cache-Control": REVALIDATE})
