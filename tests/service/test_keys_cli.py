"""`wgan-service keys`: shown once, stored hashed, listed without the key, revoked at once."""

from __future__ import annotations

import subprocess
import sys

import httpx
from sqlalchemy import select

from service.auth import hash_key
from service.models import ApiKey
from tests.conftest import ENV
from tests.support.processes import ROOT
from tests.support.service import runtime


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wgan_service", "keys", *args],
        env=ENV,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_create_list_revoke(api: str) -> None:
    made = cli("create", "--name", "ci-bot", "--owner", "team-ci")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("wgan_")
    with runtime().db.transaction() as session:
        row = session.scalars(select(ApiKey).where(ApiKey.key_hash == hash_key(key))).one()
        assert key not in (row.key_hash, row.prefix, row.name)
        key_id, prefix = row.id, row.prefix
    listed = cli("list")
    assert key_id in listed.stdout and "team-ci" in listed.stdout
    assert key not in listed.stdout
    headers = {"Authorization": f"Bearer {key}"}
    assert httpx.get(f"{api}/api/v1/jobs", headers=headers).status_code == 200
    revoked = cli("revoke", prefix)
    assert revoked.returncode == 0, revoked.stderr
    # Effective on the very next request: nothing caches keys.
    assert httpx.get(f"{api}/api/v1/jobs", headers=headers).status_code == 401
    assert "revoked" in cli("list").stdout
    assert cli("revoke", "no-such-key").returncode == 1
