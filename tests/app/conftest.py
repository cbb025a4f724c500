"""What the API tests share beyond tests/conftest.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.conftest import make_key
from tests.support.service import settings

# A 16 px DCGAN on the digits: a few steps, no evaluation (its classifier would take longer than the job).
TINY_DCGAN: dict[str, Any] = {
    "dataset": {"name": "digits"},
    "model": {"hidden_dim": 8},
    "batch_size": 16,
    "steps": 4,
    "log_every": 2,
    "checkpoint_every": 4,
    "evaluate": False,
}


@pytest.fixture
def app_with(database: str) -> Iterator[Callable[..., TestClient]]:
    """In-process apps on the test deployment (its database, Redis, store) with some limits changed:
    `app_with(max_steps=50)`, each with a key for a fresh owner unless given one."""
    clients: list[TestClient] = []

    def make(key: str | None = None, **limits: Any) -> TestClient:
        client = TestClient(create_app(settings().model_copy(update=limits))).__enter__()
        client.headers["Authorization"] = f"Bearer {key or make_key()}"
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)
