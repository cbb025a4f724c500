"""Running the Alembic migrations from code (the CLI, the dev server, the tests)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from alembic import command
from alembic.config import Config


def alembic_config(database_url: str | None = None) -> Config:
    # The migrations are package data: found where the package is installed, editable or not.
    directory = Path(str(files("migrations")))
    config = Config(str(directory / "alembic.ini"))
    config.set_main_option("script_location", str(directory))
    if database_url:
        config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)
