"""Cost bounds checked before any work: a job's parameters and FLOPs per step at validation, a sample
request's generator FLOPs before the generator is loaded. Each just inside and just outside."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio.to_thread
import httpx
import uvicorn
from fastapi.testclient import TestClient

from app.main import create_app
from app.routes.samples import SAMPLING
from app.telemetry import registry
from service.auth import authenticate
from service.runtime import Runtime
from tests.app.test_export import trained
from tests.conftest import TOY_SPEC, wait_for, wait_for_status
from tests.support.gates import occupied
from tests.support.service import settings
from wgan.config import ModelSpec, TrainSpec, resolve
from wgan.cost import model_cost, step_cost

PARKED = {**TOY_SPEC, "device": "cuda"}  # previews only; nothing is queued


def _cost(spec: dict[str, Any]) -> Any:
    return step_cost(resolve(TrainSpec.model_validate(spec), "points", (2,)))


def test_the_parameter_count_is_bounded_exactly(app_with: Callable[..., TestClient]) -> None:
    params = _cost(PARKED).params
    assert app_with(max_parameters=params).post("/api/v1/jobs/preview", json=PARKED).status_code == 200
    over = app_with(max_parameters=params - 1).post("/api/v1/jobs/preview", json=PARKED)
    assert over.status_code == 422
    (error,) = over.json()["errors"]
    assert error["loc"] == ["body", "model", "hidden_dim"]
    assert f"{params:,} parameters" in error["msg"]


def test_the_flops_per_step_are_bounded_exactly(app_with: Callable[..., TestClient]) -> None:
    flops = _cost(PARKED).flops_per_step
    assert app_with(max_step_flops=flops).post("/api/v1/jobs/preview", json=PARKED).status_code == 200
    client = app_with(max_step_flops=flops * 0.999)
    over = client.post("/api/v1/jobs", json=PARKED)
    assert over.status_code == 422
    assert [error["loc"] for error in over.json()["errors"]] == [["body", "batch_size"]]
    assert client.get("/api/v1/jobs").json()["items"] == [], "nothing was queued"


def test_a_dcgan_too_wide_to_build_is_refused_without_building_it(client: httpx.Client) -> None:
    # 2,048 channels doubling per layer: billions of parameters, counted on the meta device in milliseconds.
    huge = {"dataset": {"name": "mnist"}, "model": {"arch": "dcgan", "hidden_dim": 2048, "image_size": 64}}
    response = client.post("/api/v1/jobs", json=huge)
    assert response.status_code == 422, response.text
    locs = [error["loc"] for error in response.json()["errors"]]
    assert locs == [["body", "model", "hidden_dim"], ["body", "batch_size"]]
    assert client.get("/api/v1/jobs").json()["items"] == []


def test_a_sample_request_is_bounded_by_its_generators_cost(
    client: httpx.Client, worker: Any, app_with: Callable[..., TestClient]
) -> None:
    job = client.post("/api/v1/jobs", json=TOY_SPEC).json()
    assert wait_for_status(client, job["id"], {"succeeded", "failed"})["status"] == "succeeded"
    resolved = TrainSpec.model_validate(client.get(f"/api/v1/jobs/{job['id']}").json()["spec"])
    per_example = model_cost(ModelSpec.model_validate(resolved.model.model_dump())).generator_flops
    strict = app_with(key=client.headers["authorization"].removeprefix("Bearer "), max_sample_flops=10 * per_example)
    url = f"/api/v1/jobs/{job['id']}/samples"
    assert strict.get(url, params={"n": 10, "format": "json"}).status_code == 200
    over = strict.get(url, params={"n": 11, "format": "json"})
    assert over.status_code == 422
    (error,) = over.json()["errors"]
    assert error["loc"] == ["query", "n"]
    assert error["msg"].startswith("at most 10 ")
    # Past its time limit a request stops between chunks: a 503 that says so, with Retry-After.
    hurried = app_with(key=strict.headers["authorization"].removeprefix("Bearer "), sample_timeout_seconds=1e-9)
    late = hurried.get(url, params={"n": 10, "format": "json"})
    assert late.status_code == 503
    assert "longer than" in late.json()["detail"] and late.headers["retry-after"] == "1"
    # One owner's requests in progress are capped across API processes: a slot held elsewhere counts.
    from tests.support.service import runtime

    rt = runtime()
    with rt.db.reads() as session:
        owner = authenticate(session, strict.headers["authorization"].removeprefix("Bearer "))
    assert owner is not None
    single = app_with(key=strict.headers["authorization"].removeprefix("Bearer "), max_concurrent_samples_per_owner=1)
    # The slots of the requests above went back once idle for the linger (service.lingering_slots).
    held = slot_when_free(rt, owner.owner_id)
    try:
        busy = single.get(url, params={"n": 10, "format": "json"})
        assert busy.status_code == 429
        assert "in progress" in busy.json()["detail"]
    finally:
        rt.slots.release(SAMPLING, owner.owner_id, held)
    assert single.get(url, params={"n": 10, "format": "json"}).status_code == 200
    # Past the process's passes at once a request waits in line for a core, and within its time limit only.
    # Those in line wait on the event loop: none holds a thread of the pool that every other route needs.
    gated = app_with(key=strict.headers["authorization"].removeprefix("Bearer "), sample_concurrency=1)
    gate = gated.app.state.samplers.gate
    assert gated.portal is not None
    pool_threads = gated.portal.call(anyio.to_thread.current_default_thread_limiter)
    asked = [{"n": 10, "seed": seed, "format": fmt} for seed, fmt in enumerate(["json", "npy", "png"])]
    shared_before = registry.get_sample_value("wgan_sample_requests_shared_total") or 0.0
    with ThreadPoolExecutor(3) as pool:
        with occupied(gate):
            waiting = [pool.submit(gated.get, url, params=params) for params in asked]
            deadline = time.monotonic() + 10
            while gate.waiting < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert gate.waiting == 3 and not any(request.done() for request in waiting)
            assert gated.portal.call(lambda: pool_threads.borrowed_tokens) == 0
        answers = [request.result(30) for request in waiting]
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    # Waiting together, the three shared one pass (10 rows, then 10 and 10 in its padding; app.sample_batches),
    # and each got the bytes it gets alone, whatever its format.
    assert (registry.get_sample_value("wgan_sample_requests_shared_total") or 0.0) - shared_before == 2
    assert [answer.content for answer in answers] == [gated.get(url, params=params).content for params in asked]
    impatient = app_with(
        key=strict.headers["authorization"].removeprefix("Bearer "), sample_concurrency=1, sample_timeout_seconds=0.2
    )
    with occupied(impatient.app.state.samplers.gate):
        late = impatient.get(url, params={"n": 10, "format": "json"})
    assert late.status_code == 503 and "waited in line" in late.json()["detail"]
    # It gave its owner's slot back as it left the line, as those served did after their pass (to Redis
    # once idle for the linger).
    rt.slots.release(SAMPLING, owner.owner_id, slot_when_free(rt, owner.owner_id))


def slot_when_free(rt: Runtime, owner_id: str) -> str:
    """The owner's only sampling slot, taken as soon as no request of theirs holds or keeps it."""
    taken: list[str] = []

    def free() -> bool:
        lease = rt.slots.acquire(SAMPLING, owner_id, 1, 60)
        taken.extend([lease] if lease is not None else [])
        return lease is not None

    wait_for(free, 10, "the owner's sampling slot to be free")
    return taken[0]


def test_a_sample_request_whose_client_hangs_up_in_line_leaves_it_and_gives_its_slot_back(
    client: httpx.Client, worker: Any
) -> None:
    """Over a real socket and a real server: the client goes while its request waits for a core, and the
    request leaves the line at once, its owner's slot given back, long before a core frees up."""
    job = trained(client, TOY_SPEC)
    key = client.headers["authorization"].removeprefix("Bearer ")
    app = create_app(settings().model_copy(update={"sample_concurrency": 1}))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False))
    serving = threading.Thread(target=server.run, daemon=True)
    serving.start()
    wait_for(lambda: server.started, 30, "the in-test server to start")
    port = server.servers[0].sockets[0].getsockname()[1]
    rt, gate = app.state.runtime, app.state.samplers.gate
    with rt.db.reads() as session:
        owner = authenticate(session, key)
    assert owner is not None

    def held(count: int) -> bool:
        """Whether the owner holds exactly `count` sampling slots (probed through the slots' own bound)."""
        for limit in (count, count + 1):
            lease = rt.slots.acquire(SAMPLING, owner.owner_id, limit, 60)
            if lease is not None:
                rt.slots.release(SAMPLING, owner.owner_id, lease)
            if (lease is None) != (limit == count):
                return False
        return True

    try:
        with occupied(gate):
            asking = socket.create_connection(("127.0.0.1", port))
            asking.sendall(
                f"GET /api/v1/jobs/{job['id']}/samples?n=8&format=json HTTP/1.1\r\nHost: test\r\n"
                f"Authorization: Bearer {key}\r\n\r\n".encode()
            )
            wait_for(lambda: gate.waiting == 1, 30, "the request to wait in line")
            assert held(1), "it holds its owner's slot while it waits"
            asking.close()
            wait_for(lambda: gate.waiting == 0 and held(0), 5, "the request to leave the line")
        # The server goes on serving: the next request is answered.
        answered = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/jobs/{job['id']}/samples",
            params={"n": 8, "format": "json"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        assert answered.status_code == 200 and len(answered.json()["samples"]) == 8
    finally:
        server.should_exit = True
        serving.join(30)
