"""A job of its own on each database the service runs on, for tests that write its rows directly."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from service.db import Database
from service.migrate import upgrade
from service.models import Job, Owner, new_id
from service.states import JobState
from tests.support.service import settings
from wgan.config import TrainSpec

# Parked on the gpu queue, which no test worker serves.
PARKED = TrainSpec.model_validate({"dataset": {"name": "8gaussians"}, "device": "cuda", "steps": 40})


@dataclass
class Stored:
    db: Database
    job_id: str


@pytest.fixture(params=["postgresql", "sqlite"])
def job(request, tmp_path: Path, database: str) -> Iterator[Stored]:
    url = settings().database_url if request.param == "postgresql" else f"sqlite:///{tmp_path / 'history.db'}"
    if request.param == "sqlite":
        upgrade(url)
    db = Database(url)
    owner_id, job_id = new_id(), new_id()
    with db.transaction() as session:
        session.add(Owner(id=owner_id, name=f"history-{owner_id[:8]}"))
        session.flush()
        session.add(
            Job(
                id=job_id,
                owner_id=owner_id,
                name="history",
                status=JobState.RUNNING,
                spec=PARKED.model_dump(mode="json"),
                queue="gpu",
                total_steps=10**6,
            )
        )
    yield Stored(db, job_id)
    with db.transaction() as session:
        session.delete(session.get(Owner, owner_id))
    db.dispose()
