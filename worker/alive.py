"""A worker's sign of life: the file `wgan-service healthcheck worker` reads (fresh while it runs and
reaches its database)."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def mark_alive(path: Path | None) -> None:
    if path is not None:
        try:
            path.touch()
        except OSError as exc:
            log.warning("cannot touch the alive file %s: %s", path, exc)
