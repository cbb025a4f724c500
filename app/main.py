"""The FastAPI application: routes, error mapping, middleware and process-wide state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import torch
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app import problems
from app.body_limit import BodyLimit
from app.routes import dashboard, datasets, events, health, jobs, metrics, operations, samples
from app.sampling_cache import SamplerCache
from app.security_headers import SecurityHeaders
from app.streaming import EventHub
from app.telemetry import RequestMetrics
from service.artifacts import store_for
from service.events import channel_prefix
from service.logging_setup import configure_logging
from service.settings import Settings, get_settings
from wgan.devices import DeviceUnavailable, pick_device

DESCRIPTION = """Train Wasserstein GANs as jobs, watch their losses live, and sample from their checkpoints.

Every `/api/v1` call needs `Authorization: Bearer <api key>` (keys come from `wgan-service keys create`).
Errors are RFC 9457 problem details."""


def _sample_device(settings: Settings) -> torch.device:
    try:
        return pick_device(settings.sample_device)
    except DeviceUnavailable as exc:
        raise DeviceUnavailable("WGAN_SAMPLE_DEVICE is 'cuda' but this API host has no usable GPU") from exc


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        torch.set_num_threads(settings.api_torch_threads)
        await app.state.event_hub.start()
        yield
        await app.state.event_hub.stop()

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
    app.state.settings = settings
    app.state.store = store_for(settings)
    app.state.samplers = SamplerCache(settings.sample_cache_size, app.state.store, _sample_device(settings))
    app.state.event_hub = EventHub(settings.events_url, channel_prefix())
    problems.install(app)
    app.add_exception_handler(events.StreamFinished, events.stream_finished)
    for module in (jobs, metrics, events, samples, datasets, health, operations, dashboard):
        app.include_router(module.router)
    app.add_middleware(SecurityHeaders)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"],
            expose_headers=["Location", "ETag", "Retry-After"],
        )
    app.add_middleware(
        BodyLimit, default=settings.max_body_bytes, larger={"/api/v1/datasets": settings.max_upload_bytes}
    )
    app.add_middleware(RequestMetrics)
    return app
