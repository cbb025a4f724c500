"""The schema comes only from migrations, and migrations and models agree, on Postgres and SQLite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect, text

from service.db import make_engine
from service.migrate import alembic_config, upgrade
from service.models import Base
from tests.support import stack


def _diff(url: str) -> list:
    engine = make_engine(url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    return diff


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_database(request, tmp_path: Path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    name = f"wgan_migrations_{stack.new_tag()}"
    url = stack.create_database(name)
    yield url
    stack.drop_database(name)


def test_upgrade_on_an_empty_database_matches_the_models(empty_database: str) -> None:
    upgrade(empty_database)
    assert _diff(empty_database) == []
    engine = make_engine(empty_database)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert set(Base.metadata.tables) <= tables


def test_downgrade_to_base_and_up_again(empty_database: str) -> None:
    from alembic import command

    upgrade(empty_database)
    command.downgrade(alembic_config(empty_database), "base")
    engine = make_engine(empty_database)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    upgrade(empty_database)
    assert _diff(empty_database) == []


def _add_old_job(connection: Connection) -> None:
    """Owner 'o' and its finished job 'j', in the columns every revision has."""
    connection.execute(text("INSERT INTO owners (id, name, created_at) VALUES ('o', 'o', '2026-01-01')"))
    connection.execute(
        text(
            "INSERT INTO jobs (id, owner_id, name, status, spec, queue, progress_step, total_steps, "
            "cancel_requested, attempts, event_seq, created_at) VALUES "
            "('j', 'o', 'j', 'succeeded', '{}', 'cpu', 20, 20, false, 1, 0, '2026-01-01')"
        )
    )


def test_measures_recorded_before_0002_are_carried_into_it_and_back(empty_database: str) -> None:
    from alembic import command

    upgrade(empty_database, "0001")
    engine = make_engine(empty_database)
    with engine.begin() as connection:
        _add_old_job(connection)
        for step, w1, modes in ((10, None, None), (20, 0.25, 7.0)):
            connection.execute(
                text(
                    "INSERT INTO metrics (job_id, step, critic_loss, generator_loss, wasserstein_estimate, "
                    "seconds_per_step, exact_w1, modes_covered, time) "
                    "VALUES ('j', :step, 0, 0, 0, 0.1, :w1, :modes, '2026-01-01')"
                ),
                {"step": step, "w1": w1, "modes": modes},
            )
    upgrade(empty_database)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT step, measures FROM metrics ORDER BY step")).all()
    measures = [(step, value if isinstance(value, dict | None) else json.loads(value)) for step, value in rows]
    assert measures == [(10, None), (20, {"exact_w1": 0.25, "modes_covered": 7.0})]
    command.downgrade(alembic_config(empty_database), "0001")
    with engine.connect() as connection:
        back = connection.execute(text("SELECT step, exact_w1, modes_covered FROM metrics ORDER BY step")).all()
    engine.dispose()
    assert [tuple(row) for row in back] == [(10, None, None), (20, 0.25, 7.0)]


def test_points_recorded_before_0007_get_the_rollups_new_points_get(empty_database: str) -> None:
    from service import history
    from service.db import Database

    upgrade(empty_database, "0006")
    engine = make_engine(empty_database)
    with engine.begin() as connection:
        _add_old_job(connection)
        connection.execute(
            text(
                "INSERT INTO metrics (job_id, step, critic_loss, generator_loss, wasserstein_estimate, "
                "gradient_penalty, seconds_per_step, measures, time) "
                "VALUES ('j', :step, :loss, 0, 0, NULL, 0.1, :measures, '2026-01-01')"
            ),
            [
                {"step": step, "loss": float(step % 97), "measures": '{"exact_w1": 0.5}' if step % 100 == 0 else "null"}
                for step in range(1, 1001)
            ],
        )
    engine.dispose()
    upgrade(empty_database)
    db = Database(empty_database)
    with db.reads() as session:
        got = history.read(session, "j", 20, last_event_id=0)
    db.dispose()
    # JSON null became SQL NULL: only the measured points are measured, and the partial index holds them.
    assert got.measured.step == list(range(100, 1001, 100))
    assert got.points == sum(got.count) == 1000
    spans = list(zip(got.first_step, got.last_step, strict=True))
    assert got.series.critic_loss.max == [float(max(s % 97 for s in range(a, b + 1))) for a, b in spans]
    assert got.series.critic_loss.last == [float(b % 97) for _, b in spans]
