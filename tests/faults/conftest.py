"""Fixtures for the fault-injection tests: each test gets a private stack it may break."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import ARTIFACTS
from tests.support.isolated import Stack

# Long enough to interrupt, short enough to finish in seconds here.
FAULT_SPEC = {
    "dataset": {"name": "8gaussians"},
    "model": {"hidden_dim": 16, "depth": 2},
    "n_critic": 2,
    "batch_size": 32,
    "steps": 300,
    "log_every": 5,
    "checkpoint_every": 50,
    "evaluate": False,
}


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    stacks: list[Stack] = []

    def make(**settings: str) -> Stack:
        made = Stack(tmp_path / f"stack{len(stacks)}", ARTIFACTS / "logs" / "faults", **settings)
        stacks.append(made)
        return made

    yield make
    for made in stacks:
        made.close()
