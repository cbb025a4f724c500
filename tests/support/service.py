"""The settings and Runtime of the service under test, made on first use from the environment that
tests/conftest.py sets at import: helpers that write rows directly share them with the processes."""

from __future__ import annotations

import functools

from service.runtime import Runtime
from service.settings import Settings


@functools.cache
def settings() -> Settings:
    return Settings()


@functools.cache
def runtime() -> Runtime:
    return Runtime.start(settings())
