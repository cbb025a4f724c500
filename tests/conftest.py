"""Fixtures that start the real service: a Postgres database, Redis, a Celery worker and the API."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import stack
from tests.support.isolated import Stack
from tests.support.processes import ServiceProcess, start_api, start_webhook_sender, start_worker

# The settings of the service under test, fixed before any service module reads them, so the
# in-process helpers below (keys, direct queries) and the processes share one configuration.
TAG = stack.new_tag()
# Made on first use by the service processes, removed by the `database` fixture's teardown.
ROOT = Path(tempfile.gettempdir()) / f"wgan-test-{TAG}"
ARTIFACTS = Path(os.environ.get("WGAN_TEST_ARTIFACTS", Path(__file__).resolve().parent.parent / "test-artifacts"))
ENV, DATABASE = stack.production_env(TAG, ROOT)
ENV["WGAN_DATABASE_URL"] = stack.PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + (
    f"/{DATABASE}"
)
os.environ.update({key: value for key, value in ENV.items() if key.startswith("WGAN_")})

# A toy job that trains in a second or two on this machine.
TOY_SPEC: dict[str, Any] = {
    "dataset": {"name": "8gaussians"},
    "model": {"hidden_dim": 16, "depth": 2},
    "n_critic": 2,
    "batch_size": 32,
    "steps": 60,
    "log_every": 5,
    "checkpoint_every": 20,
}


@pytest.fixture(scope="session")
def database() -> Iterator[str]:
    from service.migrate import upgrade

    url = stack.create_database(DATABASE)
    assert url == ENV["WGAN_DATABASE_URL"]
    upgrade(url)
    yield url
    from tests.support.service import runtime

    runtime().db.dispose()
    stack.drop_database(DATABASE)
    stack.clear_redis_prefix(ENV["WGAN_REDIS_PREFIX"])
    shutil.rmtree(ROOT, ignore_errors=True)


@pytest.fixture(scope="session")
def log_dir() -> Path:
    path = ARTIFACTS / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def worker(database: str, log_dir: Path) -> Iterator[ServiceProcess]:
    process = start_worker(ENV, log_dir)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def webhook_sender(database: str, log_dir: Path) -> Iterator[ServiceProcess]:
    """The webhook sender, for the modules that use it only: its sweep would poll the database all suite long."""
    process = start_webhook_sender(ENV, log_dir)
    yield process
    process.stop()


@pytest.fixture(scope="session")
def api(database: str, log_dir: Path) -> Iterator[str]:
    process, url = start_api(ENV, log_dir)
    yield url
    process.stop()


def make_key(name: str | None = None, admin: bool = False) -> str:
    from service.auth import create_key
    from tests.support.service import runtime

    owner = name or f"owner-{stack.new_tag()}"
    with runtime().db.transaction() as session:
        return create_key(session, name=owner, owner=owner, is_admin=admin).key


@pytest.fixture
def api_key(database: str) -> str:
    """A key for a fresh owner: each test sees only its own jobs."""
    return make_key()


@pytest.fixture
def client(api: str, api_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {api_key}"}, timeout=30) as http:
        yield http


@pytest.fixture
def other_client(api: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {make_key()}"}, timeout=30) as http:
        yield http


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def wait_for_status(http: httpx.Client, job_id: str, statuses: set[str], timeout: float = 60) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        job = http.get(f"/api/v1/jobs/{job_id}").json()
        return job if job["status"] in statuses else None

    return wait_for(check, timeout, f"job {job_id} to reach {statuses}")


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """Private stacks (own database, Redis prefix, artifacts, processes) for tests that break things."""
    stacks: list[Stack] = []

    def make(**settings: str) -> Stack:
        made = Stack(tmp_path / f"stack{len(stacks)}", ARTIFACTS / "logs" / "stacks", **settings)
        stacks.append(made)
        return made

    yield make
    for made in stacks:
        made.close()
