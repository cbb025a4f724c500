"""The embedded default: no Postgres, no Redis; SQLite and a serverless Celery transport, across processes."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import httpx
from PIL import Image

from tests.conftest import ARTIFACTS, TOY_SPEC, wait_for_status
from tests.support.processes import ROOT, start_api, start_worker
from tests.support.sse import read_events
from tests.support.stack import embedded_env


def test_embedded_default_trains_and_samples_across_processes(tmp_path: Path) -> None:
    env = embedded_env(tmp_path / "var")
    logs = ARTIFACTS / "logs" / "embedded"
    migrate = subprocess.run(
        [sys.executable, "-m", "wgan_service", "migrate"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stderr
    made = subprocess.run(
        [sys.executable, "-m", "wgan_service", "keys", "create", "--name", "alice"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    key = made.stdout.strip()
    assert key.startswith("wgan_")
    worker = start_worker(env, logs)
    api, url = start_api(env, logs)
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
            assert client.get("/readyz").json()["checks"] == {"database": "ok", "broker": "ok"}
            job = client.post("/api/v1/jobs", json=TOY_SPEC).json()
            done = wait_for_status(client, job["id"], {"succeeded", "failed"}, timeout=120)
            assert done["status"] == "succeeded", done["error"]
            events = read_events(client, f"/api/v1/jobs/{job['id']}/events")
            assert [int(e.id) for e in events] == list(range(1, len(events) + 1))
            assert events[-1].data["status"] == "succeeded"
            png = client.get(f"/api/v1/jobs/{job['id']}/samples", params={"n": 64})
            Image.open(io.BytesIO(png.content)).load()
            assert png.content == client.get(f"/api/v1/jobs/{job['id']}/samples", params={"n": 64}).content
        # Everything lives under the data directory: the SQLite database, the broker file, artifacts.
        files = {path.name for path in (tmp_path / "var").iterdir()}
        assert {"wgan.db", "broker.db", "artifacts"} <= files
    finally:
        api.stop()
        worker.stop()
