"""The client is a distribution of its own: ./client builds without the service's source beside it, and
wgan_client imports and works with the service and its heavy dependencies unimportable."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What another service that installs only the client does not have.
ABSENT = ("torch", "sqlalchemy", "celery", "wgan", "service", "app", "worker", "wgan_service", "fastapi")

PROBE = f"""
import sys
for name in {ABSENT!r}:
    sys.modules[name] = None  # importing it now raises ImportError
import wgan_client
from wgan_client import Client
with Client("http://127.0.0.1:9", "key", max_retries=0) as client:
    try:
        client.get("job")
    except wgan_client.ConnectionFailed:
        pass
print(wgan_client.__file__)
"""


def test_the_client_installs_and_runs_on_its_own(tmp_path: Path) -> None:
    source = tmp_path / "client"
    shutil.copytree(ROOT / "client", source, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(source)],
        check=True,
        capture_output=True,
    )
    assert (target / "wgan_client" / "py.typed").is_file()
    shutil.rmtree(source)
    env = {**os.environ, "PYTHONPATH": str(target)}
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip().startswith(str(target))
