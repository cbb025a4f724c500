"""`wgan-service healthcheck`: what each container's health check runs, against a real API and worker state."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ENV, wait_for
from tests.support.processes import ROOT, free_port
from tests.support.service import runtime
from worker.reaper import Reaper


def healthcheck(role: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wgan_service", "healthcheck", role],
        env={**ENV, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_api_check_passes_while_it_answers_and_fails_on_a_port_nobody_serves(api: str) -> None:
    port = api.rsplit(":", 1)[1]
    assert healthcheck("api", WGAN_PORT=port).returncode == 0
    down = healthcheck("api", WGAN_PORT=str(free_port()))
    assert down.returncode == 1
    assert "/healthz" in down.stderr


def test_the_worker_check_reads_the_age_of_the_alive_file(tmp_path: Path) -> None:
    alive = tmp_path / "worker-alive"
    missing = healthcheck("worker", WGAN_WORKER_ALIVE_FILE=str(alive))
    assert missing.returncode == 1 and "has not started" in missing.stderr
    alive.touch()
    assert healthcheck("worker", WGAN_WORKER_ALIVE_FILE=str(alive)).returncode == 0
    stale = time.time() - runtime().settings.claim_stale_seconds - 5
    os.utime(alive, (stale, stale))
    old = healthcheck("worker", WGAN_WORKER_ALIVE_FILE=str(alive))
    assert old.returncode == 1 and "s ago" in old.stderr
    unset = healthcheck("worker", WGAN_WORKER_ALIVE_FILE="")
    assert unset.returncode == 1 and "not set" in unset.stderr


def test_the_reaper_touches_the_alive_file_on_start_and_after_each_pass(database: str, tmp_path: Path) -> None:
    alive = tmp_path / "worker-alive"
    settings = runtime().settings.model_copy(update={"worker_alive_file": alive, "reaper_seconds": 0.2})
    reaper = Reaper(dataclasses.replace(runtime(), settings=settings))
    reaper.start()
    try:
        first = wait_for(lambda: alive.exists() and alive.stat().st_mtime_ns, 10, "the alive file")
        wait_for(lambda: alive.stat().st_mtime_ns > first, 10, "a reaper pass to touch it again")
    finally:
        reaper.stop()
