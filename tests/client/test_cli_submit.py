"""`wgan-service submit SPEC --follow` in a subprocess, against the real stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import TOY_SPEC, make_key, wait_for
from wgan_client import Client

CLI = [sys.executable, "-m", "wgan_service", "submit"]


def _run(args: list[str], api: str, key: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if name not in {"WGAN_URL", "WGAN_API_KEY"}}
    return subprocess.run(
        [*CLI, *args, "--url", api, "--key", key], input=stdin, env=env, capture_output=True, text=True, timeout=120
    )


def test_submit_follow_shows_progress_and_the_final_status(api: str, worker: Any, tmp_path: Path) -> None:
    key = make_key()
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**TOY_SPEC, "steps": 20}))
    done = _run([str(spec), "--follow"], api, key)
    assert done.returncode == 0, done.stderr
    assert "20/20" in done.stderr  # the progress bar, driven by the event stream, reached the last step
    first = done.stdout.splitlines()[0]
    assert first.startswith("job ") and first.endswith("succeeded: step 20/20")
    assert "summary: exact_w1 best" in done.stdout

    # From standard input, without --follow: the new job's id alone on stdout, for scripts.
    queued = _run(["-"], api, key, stdin=json.dumps({**TOY_SPEC, "steps": 10, "checkpoint_every": 10}))
    assert queued.returncode == 0, queued.stderr
    with Client(api, key) as client:
        assert client.cancel(queued.stdout.strip()).id == queued.stdout.strip()


def test_submit_exits_non_zero_for_a_refused_spec_or_a_cancelled_job(api: str, worker: Any, tmp_path: Path) -> None:
    key = make_key()
    refused = _run(["-"], api, key, stdin=json.dumps({**TOY_SPEC, "steps": "many"}))
    assert refused.returncode == 1
    assert "422" in refused.stderr and "body.steps" in refused.stderr

    # A job cancelled while it is followed: the command says so and fails.
    env = {name: value for name, value in os.environ.items() if name not in {"WGAN_URL", "WGAN_API_KEY"}}
    endless = tmp_path / "endless.json"
    endless.write_text(json.dumps({**TOY_SPEC, "steps": 100_000, "checkpoint_every": 100_000}))
    with (
        subprocess.Popen(
            [*CLI, str(endless), "--follow", "--url", api, "--key", key],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        ) as following,
        Client(api, key) as client,
    ):
        job = wait_for(lambda: next(iter(client.list(status="running")), None), 60, "the followed job to run")
        client.cancel(job)
        out, err = following.communicate(timeout=60)
    assert following.returncode == 1, out + err
    assert out.splitlines()[0].startswith(f"job {job.id} cancelled: step ")
