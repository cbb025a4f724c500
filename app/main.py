"""The FastAPI application: routes, error mapping, middleware and process-wide state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import torch
from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client import generate_latest

from app import problems
from app.body_limit import BodyLimit
from app.cached import Cached
from app.compute_gate import ComputeGate, cores
from app.openapi import describe_limits
from app.readiness import check_all
from app.routes import dashboard, datasets, events, experiments, health, jobs, metrics, operations, samples, webhooks
from app.sampling_cache import SamplerCache
from app.security_headers import SecurityHeaders
from app.streaming import EventHub
from app.telemetry import RequestMetrics, state_registry
from service.events import channel_prefix
from service.heap import freeze_startup_heap
from service.logging_setup import configure_logging
from service.runtime import Runtime
from service.settings import Settings
from wgan import cost
from wgan.devices import DeviceUnavailable, pick_device

DESCRIPTION = """Train Wasserstein GANs as jobs, watch their losses live, and sample from their checkpoints.

Every `/api/v1` call needs `Authorization: Bearer <api key>` (keys come from `wgan-service keys create`).
Errors are RFC 9457 problem details."""


def _sample_device(settings: Settings) -> torch.device:
    try:
        return pick_device(settings.sample_device)
    except DeviceUnavailable as exc:
        raise DeviceUnavailable("WGAN_SAMPLE_DEVICE is 'cuda' but this API host has no usable GPU") from exc


def create_app(settings: Settings, runtime: Runtime | None = None) -> FastAPI:
    """The API on `settings`: every route reaches the database, broker, store and limits through the one
    Runtime made here (or given, to share one with other parts of a process)."""
    configure_logging(settings)
    rt = runtime or Runtime.start(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        torch.set_num_threads(settings.api_torch_threads)
        # Before the first request: a submission costs its spec inside its transaction (wgan.cost.warm).
        cost.warm()
        await app.state.event_hub.start()
        freeze_startup_heap()
        yield
        await app.state.event_hub.stop()
        app.state.samplers.gate.close()
        app.state.sample_slots.close()
        if runtime is None:
            rt.close()

    app = FastAPI(
        title="wgan-service",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # The interactive pages load their scripts from a CDN with inline code, which an offline
        # deployment cannot reach and the CSP forbids; /openapi.json is the document.
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = rt
    # Pinned only where a pass runs on its one thread: threads a pass starts inherit its core.
    gate = ComputeGate(
        settings.sample_concurrency or cores(), settings.sample_pin_threads and settings.api_torch_threads == 1
    )
    device = _sample_device(settings)
    app.state.samplers = SamplerCache(
        settings.sample_cache_size,
        rt.store,
        device,
        gate,
        settings.sample_share_passes,
        settings.sample_runtime if device.type == "cpu" else "torch",
        settings.api_torch_threads,
    )
    app.state.sample_slots = samples.sampling_slots(rt)
    app.state.sample_recall = samples.sampling_recall(settings)
    app.state.event_hub = EventHub(settings.events_url, channel_prefix(settings))
    states = state_registry(rt)
    app.state.state_metrics = Cached(settings.ops_cache_seconds, lambda: generate_latest(states))
    app.state.readiness = Cached(settings.ops_cache_seconds, lambda: check_all(rt))
    problems.install(app)
    app.add_exception_handler(events.StreamFinished, events.stream_finished)
    # Routes whose limits are settings are built for this app; the rest are the same for every app.
    for router in (
        jobs.routes(settings),
        metrics.routes(settings),
        samples.routes(settings),
        experiments.routes(settings),
        webhooks.routes(settings),
        *(module.router for module in (events, datasets, health, operations, dashboard)),
    ):
        _add_routes(app, router)
    _document_limits(app, settings)
    # The last added runs first: the body limit's 413 still gets the security and CORS headers.
    app.add_middleware(
        BodyLimit, default=settings.max_body_bytes, larger={"/api/v1/datasets": settings.max_upload_bytes}
    )
    app.add_middleware(SecurityHeaders)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"],
            expose_headers=["Location", "ETag", "Retry-After"],
        )
    app.add_middleware(RequestMetrics)
    return app


def _add_routes(app: FastAPI, router: APIRouter) -> None:
    """`router`'s routes as the app's own. FastAPI keeps an included router as a branch of the app's
    routes, matched twice per request, its routes' version re-counted each time: 390 of the 5,400 lines of
    Python a GET /api/v1/jobs/{id} ran, and 200 of a submission's 9,170 (bench request-cost, counted with
    a line tracer). A route already carries its router's prefix, tags and dependencies
    (APIRouter.add_api_route) and the app adds nothing to them, so the routes are served and documented
    the same."""
    app.router.routes.extend(router.routes)


def _document_limits(app: FastAPI, settings: Settings) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = describe_limits(build(), settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
