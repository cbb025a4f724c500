"""Fault injection for the crash tests: a worker kills itself at a chosen point of a checkpoint write.

Off unless WGAN_FAULT is set. Each fault fires once (a marker under data_dir remembers it), so the
job resumed after the crash can pass the same step.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

from service.settings import Settings

BEFORE_MANIFEST = "kill-before-manifest"
MID_WRITE = "kill-mid-write"


def _armed(settings: Settings, point: str, step: int) -> bool:
    if settings.fault != f"{point}@{step}":
        return False
    marker = settings.data_dir / f"fault-fired-{point}-{step}"
    if marker.exists():
        return False
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    return True


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def mid_write(settings: Settings, step: int, directory: Path) -> None:
    """Leave what a death inside write_atomic leaves: a partial temp file, nothing renamed."""
    if _armed(settings, MID_WRITE, step):
        (directory / f".step-{step:08d}.safetensors.partial.tmp").write_bytes(b"\x00" * 4096)
        _die()


def before_manifest(settings: Settings, step: int) -> Callable[[Path], None] | None:
    """Die after the tensors are written and before the manifest that would commit them."""
    if settings.fault != f"{BEFORE_MANIFEST}@{step}":
        return None

    def hook(_tensor_file: Path) -> None:
        if _armed(settings, BEFORE_MANIFEST, step):
            _die()

    return hook
