"""The engine stands alone: importing every module of it loads nothing of the web, queue or database layers."""

from __future__ import annotations

import pkgutil

import wgan
from tests.support.imports import packages_loaded

FORBIDDEN = ("fastapi", "starlette", "celery", "kombu", "sqlalchemy", "redis", "app", "worker", "service")


def test_every_engine_module_imports_without_the_service_layers() -> None:
    # __main__ would run the CLI on import.
    modules = sorted(
        info.name for info in pkgutil.walk_packages(wgan.__path__, "wgan.") if not info.name.endswith("__main__")
    )
    assert "wgan.trainer" in modules and "wgan.data.files" in modules  # the walk found the package
    assert packages_loaded(modules, FORBIDDEN) == []
