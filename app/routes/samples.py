"""What a checkpoint gives over HTTP: samples (/api/v1/jobs/{id}/samples, byte-identical per request), and
its generator to take away (…/checkpoints/{ref}/generator: ONNX, safetensors, a model card)."""

# No `from __future__ import annotations`: the sample limit below is a local of routes(), read by FastAPI.
import asyncio
import base64
import hashlib
import io
import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Header, Path, Query, Request, Response
from pydantic import BaseModel, Field, create_model
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive

from app import schemas
from app.deps import SAMPLE_REQUESTS, Caller, CallerDep
from app.openapi import PROBLEMS, optional_header
from app.query import query_parameters, read_query
from app.sample_batches import Ask, LeftTheLine, SampleBatches
from app.sampling_cache import Loaded, SamplerCache
from app.telemetry import SAMPLE_LATENCY
from service.errors import Conflict, InvalidInput, NotFound, RateLimited, Unavailable
from service.lingering_slots import LingeringSlots
from service.principal import Principal
from service.recall import Recall
from service.repositories import checkpoints as checkpoint_repo
from service.repositories.checkpoints import CheckpointRecord
from service.runtime import Runtime
from service.settings import Settings
from wgan import export
from wgan.cost import model_cost_json
from wgan.render import animation, grid_png, image_png, path_png, scatter_png, strip_png, to_uint8
from wgan.sampling import Sampler, SamplingRuntime, SamplingStopped, WalkPath, latent, walk_latents

# Part of every ETag: bumped when the same request renders other bytes (2: generators run in NHWC).
RENDER_VERSION = "2"
MOVING = frozenset({"latest", "best"})  # references whose checkpoint changes as the job trains
SAMPLING = "sampling"
SAMPLING_LEASE_SECONDS = 120  # beyond sample_timeout_seconds: a live request never loses its slot
# Reads kept at once for the same key's next sample requests (service.recall). Each lives a tenth of a second
# by default: this many is tens of thousands of distinct (key, job, checkpoint) reads a second in one process.
RECALL_CAPACITY = 4096
MEDIA = {
    "png": "image/png",
    "json": "application/json",
    "npy": "application/octet-stream",
    "gif": "image/gif",
    "webp": "image/webp",
}
ANIMATIONS = frozenset({"gif", "webp"})


@dataclass(frozen=True)
class Walk:
    """A latent walk: from seed A's latent to seed B's in `frames` steps, along `path`."""

    a: int
    b: int
    frames: int
    path: WalkPath

    @classmethod
    def parse(cls, interpolate: str | None, frames: int, path: WalkPath) -> "Walk | None":
        if interpolate is None:
            return None
        a, b = (int(part) for part in interpolate.split(","))
        return cls(a, b, frames, path)


def _etag(checkpoint: CheckpointRecord, runtime: SamplingRuntime, *parts: object) -> str:
    """The ETag of what `parts` ask of `checkpoint`, rendered by the sampling `runtime`: the runtimes agree to
    rounding, not bit for bit, and the model card names the runtime."""
    key = "|".join(str(part) for part in (checkpoint.id, checkpoint.sha256, *parts, runtime, RENDER_VERSION))
    return '"' + hashlib.sha256(key.encode()).hexdigest()[:32] + '"'


def _found(row: CheckpointRecord | None, ref: str) -> CheckpointRecord:
    """The checkpoint `ref` named, or why there is none: 409 for one still to come, 404 for one that is not."""
    if row is None:
        if ref == "latest":
            raise Conflict("the job has no checkpoint yet; samples come from checkpoints")
        if ref == "best":
            raise Conflict("the job has no evaluated checkpoint yet; 'best' is the one its measures rank first")
        raise NotFound(f"the job has no checkpoint {ref!r}")
    return row


def _cache_headers(row: CheckpointRecord, ref: str, etag: str) -> dict[str, str]:
    return {
        "ETag": etag,
        # 'latest' and 'best' move on as training goes; a named checkpoint never changes.
        "Cache-Control": "private, max-age=31536000, immutable" if ref not in MOVING else "private, no-cache",
        "X-Checkpoint-Step": str(row.step),
    }


def _matches(if_none_match: str | None, etag: str) -> bool:
    if if_none_match is None:
        return False
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return etag in candidates or "*" in candidates


def _latents(loaded: Loaded, n: int, seed: int, latent_walk: Walk | None) -> np.ndarray:
    dim = loaded.sampler.spec.model.latent_dim
    assert dim is not None
    if latent_walk is None:
        return latent(seed, n, dim)
    return walk_latents(latent_walk.a, latent_walk.b, latent_walk.frames, dim, latent_walk.path)


def _rendered(
    loaded: Loaded,
    checkpoint: CheckpointRecord,
    samples: np.ndarray,
    seed: int,
    fmt: str,
    latent_walk: Walk | None,
) -> bytes:
    if fmt == "npy":
        buffer = io.BytesIO()
        np.save(buffer, samples, allow_pickle=False)
        return buffer.getvalue()
    if loaded.sampler.is_images:
        images = to_uint8(samples)
        if fmt in ANIMATIONS:
            return animation(images, fmt)
        if fmt == "png":
            return grid_png(images) if latent_walk is None else strip_png(images)
        items: list[object] = [base64.b64encode(image_png(image)).decode() for image in images]
    else:
        assert loaded.reference is not None
        if fmt == "png":
            draw = scatter_png if latent_walk is None else path_png
            return draw(samples, loaded.reference, background=loaded.backdrop)
        items = samples.tolist()
    body = schemas.SampleSet(
        checkpoint=schemas.SampleCheckpoint(id=checkpoint.id, step=checkpoint.step),
        seed=seed if latent_walk is None else latent_walk.a,
        samples=items,
    )
    return body.model_dump_json().encode()


def _generator_flops(spec: dict[str, Any]) -> float:
    """FLOPs of one sample from the job's generator: counted on the meta device, cached per model (keyed by
    the stored spec's text, so a request validates no model of its own)."""
    return model_cost_json(json.dumps(spec["model"], sort_keys=True)).generator_flops


def _check_cost(per_example: float, n: int, settings: Settings) -> None:
    """Refuse a request whose forward passes would cost more than the deployment allows, before the
    generator is even loaded."""
    most = max(1, int(settings.max_sample_flops // max(per_example, 1)))
    if n > most:
        raise InvalidInput(
            "too many samples for this model",
            [(("query", "n"), f"at most {most} from this job's generator ({per_example:.3g} FLOPs each)")],
        )


# A sample request's read, by its key's stored hash, job id and checkpoint reference: who the key's owner is,
# the job's spec, the checkpoint (only reads that found one are kept), and the FLOPs of one sample from its
# generator (counted on the pool thread: a count not cached costs tens of milliseconds, not for the loop).
Seen = tuple[Principal, dict[str, Any], CheckpointRecord, float]
SampleRecall = Recall[tuple[str, str, str], Seen]


@dataclass(frozen=True)
class AtHand:
    """What a sample request needs, all at hand in this process: what a read found for the same key, job and
    checkpoint moments ago, its generator loaded, and a slot kept for its owner (now held by the request)."""

    seen: Seen
    loaded: Loaded
    lease: str


def _at_hand(
    caller: Caller, recall: SampleRecall, samplers: SamplerCache, slots: LingeringSlots, job_id: str, ref: str
) -> AtHand | None:
    """Everything the request needs before its pass, if this process has it at hand; else None, and the
    request reads on a pool thread. No I/O, so it runs on the event loop."""
    rt = caller.rt
    # A budget shared through Redis costs a round trip to spend.
    if rt.limiter.asks_redis(SAMPLE_REQUESTS.per_minute(rt.settings)):
        return None
    key_hash = caller.key_hash
    seen = recall.get((key_hash, job_id, ref)) if key_hash is not None else None
    if seen is None:
        return None
    loaded = samplers.loaded(seen[2])
    if loaded is None:
        return None
    lease = slots.acquire_kept(seen[0].owner_id)
    return None if lease is None else AtHand(seen, loaded, lease)


@dataclass
class Pending:
    """A sample request past its checks, holding one of its owner's sampling slots: the pass still to run."""

    ask: Ask  # its part in a pass; the slot goes back once a pass has answered it
    release: Callable[[], None]  # gives the slot back
    timeout: float
    deadline: float  # time.monotonic() past which it leaves the line, or stops between chunks
    fmt: str
    headers: dict[str, str]


def _prepare(
    caller: Caller,
    samplers: SamplerCache,
    slots: LingeringSlots,
    recall: SampleRecall,
    job_id: str,
    n: int,
    seed: int,
    checkpoint: str,
    fmt: str,
    if_none_match: str | None,
    gone: asyncio.Event,
    latent_walk: Walk | None,
    hand: AtHand | None,
) -> Response | Pending:
    """Everything of a sample request that comes before its pass: the answer when it needs no pass (304, or
    an error raised), else the pass to run, its slot taken. Without `hand` it reads the database, Redis and
    the store, in one trip to the pool; with it, it waits on nothing."""
    rt = caller.rt
    with ExitStack() as held:
        if hand is None:
            principal, spec, found = _visible(caller, job_id, checkpoint)
        else:
            principal, spec, found, _ = hand.seen
            held.callback(slots.release, principal.owner_id, hand.lease)
            caller.recalled(principal, SAMPLE_REQUESTS)
        if fmt in ANIMATIONS and latent_walk is None:
            raise InvalidInput(
                "gif and webp animate a latent walk", [(("query", "format"), "give interpolate=A,B too")]
            )
        if fmt in ANIMATIONS and spec["model"].get("image_size") is None:
            raise InvalidInput(
                "2-D data has no frames to animate", [(("query", "format"), "a 2-D walk is drawn as png")]
            )
        per_example = _generator_flops(spec) if hand is None else hand.seen[3]
        _check_cost(per_example, n if latent_walk is None else latent_walk.frames, rt.settings)
        if hand is None:
            held.enter_context(_sampling_slot(slots, rt.settings, principal))
        row = _found(found, checkpoint)
        if hand is None:
            _recall(recall, caller, job_id, checkpoint, (principal, spec, row, per_example))
        asked = (n, seed) if latent_walk is None else ("walk", latent_walk)
        etag = _etag(row, samplers.runtime, *asked, fmt)
        headers = _cache_headers(row, checkpoint, etag)
        if _matches(if_none_match, etag):
            return Response(status_code=304, headers=headers)
        timeout = rt.settings.sample_timeout_seconds
        deadline = time.monotonic() + timeout
        # The generator is loaded here: a load from the store waits on I/O, not on a core, and must not
        # hold one of the gate's threads while it does.
        loaded = samplers.get(row) if hand is None else hand.loaded

        def should_stop() -> bool:
            # Read from the gate's thread: an asyncio.Event's flag is a plain attribute, safe to read there.
            return gone.is_set() or time.monotonic() > deadline

        release = held.pop_all().close
        ask = Ask(
            loaded.sampler,
            n if latent_walk is None else latent_walk.frames,
            lambda: _latents(loaded, n, seed, latent_walk),
            lambda samples: _rendered(loaded, row, samples, seed, fmt, latent_walk),
            should_stop,
            release,
        )
        # The slot outlives this trip: whoever ends the request gives it back.
        return Pending(ask, release, timeout, deadline, fmt, headers)


async def _sample(batches: SampleBatches, pending: Pending, gone: asyncio.Event) -> Response:
    """The pass on one of the gate's threads, maybe shared with others in line, awaited here; the slot goes
    back once a pass has answered, from the gate's thread (a Redis call), or from a trip of its own if the
    request left the line instead."""
    try:
        with SAMPLE_LATENCY.labels(pending.fmt).time():
            body = await batches.answer(pending.ask, gone, pending.deadline)
    except SamplingStopped as exc:
        if isinstance(exc, LeftTheLine):
            await run_in_threadpool(pending.release)
        # Nobody reads the answer to a client that has gone; one that waited too long is told why.
        raise Unavailable(f"sampling took longer than {pending.timeout:g} s ({exc}); ask for fewer", 1) from exc
    return Response(body, media_type=MEDIA[pending.fmt], headers=pending.headers)


def _visible(caller: Caller, job_id: str, ref: str) -> tuple[Principal, dict[str, Any], CheckpointRecord | None]:
    """Key, rate limit, owned job; then the job's spec and its checkpoint `ref`, in one session."""
    principal, visible = caller.read(
        lambda session, key_hash: checkpoint_repo.find_visible_with_key(session, key_hash, job_id, ref),
        lambda session, principal: checkpoint_repo.find_visible(session, job_id, principal, ref),
        SAMPLE_REQUESTS,
    )
    spec, row = visible or (None, None)
    if spec is None:
        raise NotFound(f"no job {job_id}")
    return principal, spec, row


def _recall(recall: SampleRecall, caller: Caller, job_id: str, ref: str, seen: Seen) -> None:
    """A sample request's read, kept for the same key's next requests."""
    key_hash = caller.key_hash
    if key_hash is not None:
        recall.put((key_hash, job_id, ref), seen)


def sampling_recall(settings: Settings) -> SampleRecall:
    """The sample requests' reads, kept for the same key's next requests (service.recall)."""
    return Recall(settings.sample_recall_seconds, RECALL_CAPACITY)


def sampling_slots(rt: Runtime) -> LingeringSlots:
    """The owners' sampling slots as this API process takes them (one per request in progress). A lease is
    taken again only while twice the longest a request may take is left of its time to live."""
    settings = rt.settings
    reuse_for = max(0.0, SAMPLING_LEASE_SECONDS - 2 * settings.sample_timeout_seconds)
    return LingeringSlots(rt.slots, SAMPLING, SAMPLING_LEASE_SECONDS, settings.sample_slot_linger_seconds, reuse_for)


@contextmanager
def _sampling_slot(slots: LingeringSlots, settings: Settings, principal: Principal) -> Iterator[None]:
    """One of the owner's concurrent sampling slots (shared by every API process) while the work runs."""
    limit = settings.max_concurrent_samples_per_owner
    lease = slots.acquire(principal.owner_id, limit)
    if lease is None:
        raise RateLimited(f"this owner already has {limit} sample requests in progress", 1)
    try:
        yield
    finally:
        slots.release(principal.owner_id, lease)


EXPORT_MEDIA = {"onnx": "application/onnx", "safetensors": "application/octet-stream", "card": "application/json"}
EXPORT_SUFFIX = {"onnx": "onnx", "safetensors": "safetensors"}


def _serve_generator(
    caller: Caller,
    samplers: SamplerCache,
    slots: LingeringSlots,
    job_id: str,
    checkpoint: str,
    fmt: str,
    if_none_match: str | None,
) -> Response:
    principal, spec, found = _visible(caller, job_id, checkpoint)
    rt = caller.rt
    row = _found(found, checkpoint)
    etag = _etag(row, samplers.runtime, "generator", fmt)
    headers = _cache_headers(row, checkpoint, etag)
    if _matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    # An export builds and traces the generator: it takes one of the owner's sampling slots, and a core
    # of the gate once the generator is loaded.
    with _sampling_slot(slots, rt.settings, principal):
        sampler = samplers.get(row).sampler
        body = samplers.gate.run(lambda: _exported(sampler, fmt, job_id, row, spec))
    if fmt in EXPORT_SUFFIX:
        headers["Content-Disposition"] = (
            f'attachment; filename="generator-{job_id[:8]}-{row.step}.{EXPORT_SUFFIX[fmt]}"'
        )
    return Response(body, media_type=EXPORT_MEDIA[fmt], headers=headers)


def _exported(sampler: Sampler, fmt: str, job_id: str, row: CheckpointRecord, spec: dict[str, Any]) -> bytes:
    if fmt == "onnx":
        return export.onnx_bytes(sampler)
    if fmt == "safetensors":
        return export.safetensors_bytes(sampler)
    card = export.model_card(sampler)
    card |= {
        "job_id": job_id,
        "checkpoint": {"id": row.id, "step": row.step, "measures": row.measures},
        "dataset": spec["dataset"],
        "spec": spec,
        "formats": {
            name: f"/api/v1/jobs/{job_id}/checkpoints/{row.id}/generator?format={name}" for name in EXPORT_SUFFIX
        },
    }
    return export.card_json(card)


async def _watch_disconnect(receive: Receive, gone: asyncio.Event) -> None:
    # The server answers a receive only when the client sends more or goes (a GET's empty body comes
    # first): waiting on it costs nothing until then, where polling is_disconnected() cost every waiter
    # a cancel scope ten times a second.
    while (await receive())["type"] != "http.disconnect":
        pass
    gone.set()


class SampleQuery(BaseModel):
    """What GET /samples asks for. The deployment's own bounds on n and frames are added by `bounded_query`."""

    n: int = 64
    seed: Annotated[int, Field(ge=-(2**63), le=2**63 - 1)] = 0
    checkpoint: Annotated[
        str,
        Field(
            max_length=64,
            description="A checkpoint id, a step, 'latest', or 'best' (the checkpoint the job's primary measure "
            "ranks first: see the job's summary).",
        ),
    ] = "latest"
    format: Annotated[
        Literal["png", "json", "npy", "gif", "webp"],
        Field(description="gif and webp animate a latent walk (images only); png of a walk is a strip."),
    ] = "png"
    interpolate: Annotated[
        str | None,
        Field(
            pattern=r"^-?[0-9]{1,18},-?[0-9]{1,18}$",
            description="SEED_A,SEED_B: a latent walk from seed A's first latent to seed B's, instead of n "
            "samples (for 2-D data, the path drawn over the data).",
        ),
    ] = None
    frames: Annotated[int, Field(description="Steps of the walk.")] = 16
    path: Annotated[WalkPath, Field(description="slerp: along the great circle (White 2016); lerp: a line.")] = "slerp"


def bounded_query(settings: Settings) -> type[SampleQuery]:
    """SampleQuery with n and frames bounded by `settings` (a field keeps its place when redefined)."""

    def bounded(name: str, low: int, high: int) -> Any:
        field = SampleQuery.model_fields[name]
        return (field.annotation, Field(field.default, ge=low, le=high, description=field.description))

    return create_model(
        "SampleQuery",
        __base__=SampleQuery,
        n=bounded("n", 1, settings.max_samples),
        frames=bounded("frames", 2, settings.max_walk_frames),
    )


def routes(settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/api/v1/jobs", tags=["samples"])
    query_model = bounded_query(settings)

    @router.get(
        "/{job_id}/samples",
        responses={
            200: {
                "description": "A PNG grid (or scatter plot for 2-D data), JSON, or the raw float32 array (npy).",
                # As a model, not its inline JSON schema: FastAPI then lists it (and SampleCheckpoint) among the
                # components, where the inline schema's own $defs refs resolved nowhere for client generators.
                "model": schemas.SampleSet,
                "content": {
                    "image/png": {},
                    "application/json": {},
                    "application/octet-stream": {},
                    "image/gif": {},
                    "image/webp": {},
                },
            },
            304: {"description": "Not modified (If-None-Match)."},
            **PROBLEMS(401, 404, 409, 422, 429, 503),
        },
        response_class=Response,
        summary="Generate samples from a checkpoint; the same inputs give byte-identical output",
        openapi_extra={"parameters": [*query_parameters(query_model), *optional_header("If-None-Match")["parameters"]]},
    )
    async def get_samples(request: Request, job_id: str, caller: CallerDep) -> Response:
        # The query and If-None-Match are read here, not declared as parameters (app.query).
        query = read_query(request, query_model)
        # One trip to the thread pool for the request's reads and its slot, as every route makes (app.deps);
        # the pass is awaited here, not in that trip, so a request in line holds no pool thread.
        samplers: SamplerCache = request.app.state.samplers
        gone = asyncio.Event()
        # Work for a client that has gone stops between chunks, and a request of its in line leaves it. A
        # plain task, not an anyio task group, whose cancel scope (formatting the task's repr as it cancels)
        # showed in the loop's profile.
        watcher = asyncio.ensure_future(_watch_disconnect(request.receive, gone))
        try:
            slots, recall = request.app.state.sample_slots, request.app.state.sample_recall
            asked = (
                caller,
                samplers,
                slots,
                recall,
                job_id,
                query.n,
                query.seed,
                query.checkpoint,
                query.format,
                request.headers.get("if-none-match"),
                gone,
                Walk.parse(query.interpolate, query.frames, query.path),
            )
            hand = _at_hand(caller, recall, samplers, slots, job_id, query.checkpoint)
            # With all it needs at hand, a request waits on nothing before its pass: prepared here, with no trip
            # to the pool (a client asking again at once, the common case under load).
            prepared = _prepare(*asked, hand) if hand is not None else await run_in_threadpool(_prepare, *asked, None)
            return prepared if isinstance(prepared, Response) else await _sample(samplers.batches, prepared, gone)
        finally:
            watcher.cancel()

    @router.get(
        "/{job_id}/checkpoints/{checkpoint}/generator",
        responses={
            200: {
                "description": "The checkpoint's sampling generator: ONNX (input z [batch, latent_dim], output x), "
                "safetensors (its weights alone, the spec in the metadata), or a JSON model card.",
                "content": {"application/onnx": {}, "application/octet-stream": {}, "application/json": {}},
            },
            304: {"description": "Not modified (If-None-Match)."},
            **PROBLEMS(401, 404, 409, 422, 429),
        },
        response_class=Response,
        summary="Take the generator away: ONNX, safetensors, or its model card",
        tags=["generators"],
    )
    async def get_generator(
        request: Request,
        job_id: str,
        checkpoint: Annotated[str, Path(max_length=64, description="A checkpoint id, a step, 'latest' or 'best'.")],
        caller: CallerDep,
        format: Annotated[Literal["onnx", "safetensors", "card"], Query()] = "onnx",
        if_none_match: Annotated[str | None, Header()] = None,
    ) -> Response:
        samplers: SamplerCache = request.app.state.samplers
        return await run_in_threadpool(
            _serve_generator,
            caller,
            samplers,
            request.app.state.sample_slots,
            job_id,
            checkpoint,
            format,
            if_none_match,
        )

    return router
