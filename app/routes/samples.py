"""/api/v1/jobs/{id}/samples: generated images or points from a checkpoint, byte-identical per request."""

# No `from __future__ import annotations`: the sample limit below is a local of routes(), read by FastAPI.
import base64
import hashlib
import io
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Header, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from app import schemas
from app.deps import SAMPLE_REQUESTS, BearerDep, admit
from app.openapi import PROBLEMS
from app.sampling_cache import SamplerCache
from app.telemetry import SAMPLE_LATENCY
from service.errors import Conflict, NotFound
from service.models import CheckpointRow
from service.repositories import checkpoints as checkpoint_repo
from service.runtime import Runtime
from service.settings import Settings
from wgan.render import grid_png, image_png, scatter_png, to_uint8
from wgan.sampling import sample

RENDER_VERSION = "1"
MOVING = frozenset({"latest", "best"})  # references whose checkpoint changes as the job trains
MEDIA = {"png": "image/png", "json": "application/json", "npy": "application/octet-stream"}


def _etag(checkpoint: CheckpointRow, n: int, seed: int, fmt: str) -> str:
    key = f"{checkpoint.id}|{checkpoint.sha256}|{n}|{seed}|{fmt}|{RENDER_VERSION}"
    return '"' + hashlib.sha256(key.encode()).hexdigest()[:32] + '"'


def _matches(if_none_match: str | None, etag: str) -> bool:
    if if_none_match is None:
        return False
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return etag in candidates or "*" in candidates


def render(cache: SamplerCache, checkpoint: CheckpointRow, n: int, seed: int, fmt: str) -> bytes:
    loaded = cache.get(checkpoint)
    samples = sample(loaded.sampler, n, seed)
    if fmt == "npy":
        buffer = io.BytesIO()
        np.save(buffer, samples, allow_pickle=False)
        return buffer.getvalue()
    if loaded.sampler.is_images:
        images = to_uint8(samples)
        if fmt == "png":
            return grid_png(images)
        items: list[object] = [base64.b64encode(image_png(image)).decode() for image in images]
    else:
        assert loaded.reference is not None
        if fmt == "png":
            return scatter_png(samples, loaded.reference, background=loaded.backdrop)
        items = samples.tolist()
    body = schemas.SampleSet(
        checkpoint=schemas.SampleCheckpoint(id=checkpoint.id, step=checkpoint.step), seed=seed, samples=items
    )
    return body.model_dump_json().encode()


def _serve(
    rt: Runtime,
    samplers: SamplerCache,
    token: str | None,
    job_id: str,
    n: int,
    seed: int,
    checkpoint: str,
    fmt: str,
    if_none_match: str | None,
) -> Response:
    # The checks the other routes make as dependencies (app.deps.admit), in the same order: key, rate
    # limit, owned job, in this one trip.
    with rt.db.reads() as session:
        principal = admit(rt, session, token, SAMPLE_REQUESTS)
        visible, row = checkpoint_repo.find_visible(session, job_id, principal, checkpoint)
        if not visible:
            raise NotFound(f"no job {job_id}")
    if row is None:
        if checkpoint == "latest":
            raise Conflict("the job has no checkpoint yet; samples come from checkpoints")
        if checkpoint == "best":
            raise Conflict("the job has no evaluated checkpoint yet; 'best' is the one its measures rank first")
        raise NotFound(f"the job has no checkpoint {checkpoint!r}")
    etag = _etag(row, n, seed, fmt)
    headers = {
        "ETag": etag,
        # 'latest' and 'best' move on as training goes; a named checkpoint never changes.
        "Cache-Control": "private, max-age=31536000, immutable" if checkpoint not in MOVING else "private, no-cache",
        "X-Checkpoint-Step": str(row.step),
    }
    if _matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    with SAMPLE_LATENCY.labels(fmt).time():
        body = render(samplers, row, n, seed, fmt)
    return Response(body, media_type=MEDIA[fmt], headers=headers)


def routes(settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/api/v1/jobs", tags=["samples"])

    @router.get(
        "/{job_id}/samples",
        responses={
            200: {
                "description": "A PNG grid (or scatter plot for 2-D data), JSON, or the raw float32 array (npy).",
                "content": {
                    "image/png": {},
                    "application/json": {"schema": schemas.SampleSet.model_json_schema()},
                    "application/octet-stream": {},
                },
            },
            304: {"description": "Not modified (If-None-Match)."},
            **PROBLEMS(401, 404, 409, 422, 429),
        },
        response_class=Response,
        summary="Generate samples from a checkpoint; the same inputs give byte-identical output",
    )
    async def get_samples(
        request: Request,
        job_id: str,
        credentials: BearerDep,
        n: Annotated[int, Query(ge=1, le=settings.max_samples)] = 64,
        seed: Annotated[int, Query(ge=-(2**63), le=2**63 - 1)] = 0,
        checkpoint: Annotated[
            str,
            Query(
                max_length=64,
                description="A checkpoint id, a step, 'latest', or 'best' (the checkpoint the job's primary measure "
                "ranks first: see the job's summary).",
            ),
        ] = "latest",
        format: Annotated[Literal["png", "json", "npy"], Query()] = "png",
        if_none_match: Annotated[str | None, Header()] = None,
    ) -> Response:
        # One trip to the thread pool for the whole request. As sync dependencies (session, key,
        # rate limit, job) each would be a trip of its own, and on a busy host those hops were most of
        # what sampling over HTTP added to the forward pass itself.
        token = credentials.credentials if credentials else None
        rt: Runtime = request.app.state.runtime
        samplers: SamplerCache = request.app.state.samplers
        return await run_in_threadpool(_serve, rt, samplers, token, job_id, n, seed, checkpoint, format, if_none_match)

    return router
