"""A plain (non-editable) install is complete: `wgan-service migrate` finds its migrations and the API
its dashboard files as package data, with no source tree beside them (as in the Docker image)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("wgan", "service", "app", "worker", "wgan_service", "migrations")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built from a copy: pip builds in the source tree, and two builds there would share build/.
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in (*PACKAGES, "client/wgan_client"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path_factory.mktemp("site")
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
    subprocess.run(
        [*pip, "--target", str(target), str(source)],
        check=True,
        capture_output=True,
    )
    shutil.rmtree(source)
    return target


def _run(installed: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WGAN_")}
    env |= {"PYTHONPATH": str(installed), "WGAN_DATA_DIR": str(cwd / "data")}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)


def test_the_code_comes_from_the_install_not_the_source_tree(installed: Path, tmp_path: Path) -> None:
    where = _run(
        installed, tmp_path, "-c", "import service, migrations, app; print(service.__file__, migrations.__file__)"
    )
    assert where.returncode == 0, where.stderr
    assert all(path.startswith(str(installed)) for path in where.stdout.split())
    assert (installed / "migrations" / "alembic.ini").is_file()
    assert (installed / "app" / "static" / "index.html").is_file()
    # The client, from client/, ships in the service's distribution too (its `submit` command uses it).
    assert (installed / "wgan_client" / "client.py").is_file() and (installed / "wgan_client" / "py.typed").is_file()


def test_migrate_works_from_a_plain_install(installed: Path, tmp_path: Path) -> None:
    migrated = _run(installed, tmp_path, "-m", "wgan_service", "migrate")
    assert migrated.returncode == 0, migrated.stderr
    with sqlite3.connect(tmp_path / "data" / "wgan.db") as db:
        (head,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    newest = max(p.name.split("_", 1)[0] for p in (ROOT / "migrations" / "versions").glob("[0-9]*.py"))
    assert head == newest
    assert {"jobs", "metrics", "checkpoints", "events", "api_keys"} <= tables
