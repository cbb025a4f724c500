"""The schema comes only from migrations, and migrations and models agree, on Postgres and SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

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
