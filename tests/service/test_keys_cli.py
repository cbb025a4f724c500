"""`wgan-service keys`: shown once, stored hashed, listed without the key, revoked at once."""

from __future__ import annotations

import subprocess
import sys

import httpx
from sqlalchemy import select

from service.auth import hash_key
from service.models import ApiKey, Job, Owner
from tests.conftest import ENV, TOY_SPEC
from tests.support.processes import ROOT
from tests.support.service import runtime

PARKED = {**TOY_SPEC, "device": "cuda"}  # on the gpu queue, which no test worker serves


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
    assert httpx.post(f"{api}/api/v1/jobs", headers=headers, json=PARKED).status_code == 202
    revoked = cli("revoke", prefix)
    assert revoked.returncode == 0, revoked.stderr
    # Effective on the very next request: nothing caches keys. A submission, which checks its key inside
    # its own transaction, is refused and writes nothing.
    assert httpx.get(f"{api}/api/v1/jobs", headers=headers).status_code == 401
    assert httpx.post(f"{api}/api/v1/jobs", headers=headers, json=PARKED).status_code == 401
    with runtime().db.reads() as session:
        owner_jobs = session.scalars(
            select(Job).join(Owner, Job.owner_id == Owner.id).where(Owner.name == "team-ci")
        ).all()
    assert len(owner_jobs) == 1
    assert "revoked" in cli("list").stdout
    assert cli("revoke", "no-such-key").returncode == 1
