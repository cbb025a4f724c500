"""Start-up objects leave the cyclic collector (service.heap); garbage made later is still collected."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from service.heap import freeze_startup_heap
from tests.support.service import settings


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


class Node:
    def __init__(self) -> None:
        self.me = self


def test_a_full_collection_no_longer_walks_what_start_up_made(unfrozen: None) -> None:
    # Counted after a collection: earlier tests' cyclic garbage is freed by the freeze, not frozen.
    gc.collect()
    tracked = len(gc.get_objects())
    frozen = freeze_startup_heap()
    assert frozen >= tracked * 0.9
    assert len(gc.get_objects()) < tracked * 0.1


def test_a_cycle_made_after_the_freeze_is_still_collected(unfrozen: None) -> None:
    freeze_startup_heap()
    cycle = Node()
    gone = weakref.ref(cycle)
    del cycle
    gc.collect()
    assert gone() is None


def test_the_api_freezes_once_it_has_started(database: str, unfrozen: None) -> None:
    with TestClient(create_app(settings())) as client:
        assert gc.get_freeze_count() > 0
        assert client.get("/healthz").status_code == 200
