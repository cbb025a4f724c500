"""/metrics in the Prometheus text format: behind WGAN_METRICS_TOKEN, its reads cached briefly."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.cached import Cached
from app.deps import runtime_of
from app.telemetry import registry
from service.errors import NotFound, Unauthorized

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text exposition."},
        401: {"description": "WGAN_METRICS_TOKEN is set and the request does not bear it."},
        404: {"description": "Production without WGAN_METRICS_TOKEN: /metrics is off."},
    },
    summary="Prometheus metrics: requests, jobs by status, queue depth, training speed",
)
def metrics(request: Request) -> Response:
    settings = runtime_of(request).settings
    if settings.metrics_token:
        sent = request.headers.get("authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {settings.metrics_token}".encode()):
            raise Unauthorized("/metrics needs 'Authorization: Bearer <WGAN_METRICS_TOKEN>'")
    elif settings.environment == "production":
        raise NotFound("/metrics is off: set WGAN_METRICS_TOKEN to scrape it")
    # The process's request metrics, then the deployment's state (read at most every ops_cache_seconds).
    states: Cached[bytes] = request.app.state.state_metrics
    return Response(generate_latest(registry) + states.get(), media_type=CONTENT_TYPE_LATEST)
