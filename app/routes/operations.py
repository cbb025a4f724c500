"""/metrics in the Prometheus text format."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.telemetry import registry

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text exposition."}},
    summary="Prometheus metrics: requests, jobs by status, queue depth, training speed",
)
def metrics(request: Request) -> Response:
    # The process's request metrics, then the deployment's state as this app's Runtime sees it.
    body = generate_latest(registry) + generate_latest(request.app.state.state_metrics)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
