"""What the client tests share: a client for a fresh owner, and a job it has trained."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import TOY_SPEC, make_key
from wgan_client import Client, Job

# Leaves the client's retries at their defaults but gives up on a wait long before pytest's timeout would.
WAIT_SECONDS = 120


@pytest.fixture(scope="module")
def owner_key(database: str) -> str:
    return make_key()


@pytest.fixture(scope="module")
def wgan(api: str, owner_key: str) -> Iterator[Client]:
    with Client(api, owner_key) as client:
        yield client


@pytest.fixture(scope="module")
def trained(wgan: Client, worker: Any) -> Job:
    """A toy job trained to the end: 60 steps, a metric point every 5, a checkpoint every 20."""
    return wgan.wait(wgan.submit(TOY_SPEC), timeout=WAIT_SECONDS)
