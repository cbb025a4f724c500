"""Before the tests: make sure Postgres, Redis, Chromium and docker-compose are there, or say why not.

Run by `make test` (and so by .ci/run). Starts the local Postgres and Redis if they are installed
but down, and installs Debian's chromium and docker-compose when missing (as root).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import time

POSTGRES = ("127.0.0.1", 5432)
REDIS = ("127.0.0.1", 6379)
APT_PACKAGES = {"/usr/bin/chromium": "chromium", "/usr/bin/docker-compose": "docker-compose"}
WAIT_SECONDS = 30


def listening(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=1):
            return True
    except OSError:
        return False


def wait_until_listening(address: tuple[str, int], name: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not listening(address):
        if time.monotonic() > deadline:
            sys.exit(f"prepare: {name} is not listening on {address[0]}:{address[1]} after {WAIT_SECONDS} s")
        time.sleep(0.5)


def run(command: list[str]) -> None:
    print("prepare: $", " ".join(command), flush=True)
    subprocess.run(command, check=True)


def ensure_postgres() -> None:
    if listening(POSTGRES):
        return
    versions = sorted(os.path.basename(path) for path in glob.glob("/etc/postgresql/*"))
    if not versions or not shutil.which("pg_ctlcluster"):
        sys.exit("prepare: PostgreSQL is not running on 127.0.0.1:5432 and no local cluster is installed")
    run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"])
    wait_until_listening(POSTGRES, "PostgreSQL")


def ensure_redis() -> None:
    if listening(REDIS):
        return
    if not shutil.which("redis-server"):
        sys.exit("prepare: Redis is not running on 127.0.0.1:6379 and redis-server is not installed")
    run(
        [
            "redis-server",
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
    )
    wait_until_listening(REDIS, "Redis")


def ensure_apt_packages() -> None:
    missing = [package for path, package in APT_PACKAGES.items() if not os.path.exists(path)]
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit(f"prepare: install {' '.join(missing)} (Debian packages); the browser and compose tests need them")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print(f"prepare: installing {' '.join(missing)} with apt-get", flush=True)
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
    ):
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.exit(f"prepare: {' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def main() -> None:
    ensure_postgres()
    ensure_redis()
    ensure_apt_packages()
    print("prepare: PostgreSQL, Redis, chromium and docker-compose are ready", flush=True)


if __name__ == "__main__":
    main()
