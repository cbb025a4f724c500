"""A value made again at most every so many seconds: a flood of scrapes or probes costs one read."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Cached(Generic[T]):
    def __init__(self, seconds: float, make: Callable[[], T]) -> None:
        self.seconds = seconds
        self._make = make
        self._value: T | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def get(self) -> T:
        # Callers that arrive while it is being made wait for that one read instead of making their own.
        with self._lock:
            now = time.monotonic()
            if self._value is None or now >= self._expires:
                self._value = self._make()
                self._expires = now + self.seconds
            return self._value
