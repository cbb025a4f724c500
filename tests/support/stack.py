"""Environments for the service under test: Postgres + Redis, or the embedded default."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import psycopg
import redis

from wgan_service import openmp

PG_ADMIN = os.environ.get("WGAN_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("WGAN_TEST_REDIS", "redis://127.0.0.1:6379/0")

# Short intervals so faults are noticed within seconds in tests.
FAST_TIMINGS = {
    "WGAN_HEARTBEAT_SECONDS": "0.5",
    "WGAN_CLAIM_STALE_SECONDS": "4",
    "WGAN_REAPER_SECONDS": "1",
    "WGAN_DB_IDLE_IN_TRANSACTION_SECONDS": "3",
    "WGAN_REQUEUE_QUEUED_SECONDS": "5",
    "WGAN_SSE_POLL_SECONDS": "0.5",
    # Above the database pool's 30 connections, so a test can show streams do not hold them.
    "WGAN_MAX_STREAMS_PER_OWNER": "40",
    # Every test client is 127.0.0.1: the probes' bad keys must not lock the rest of the suite out.
    "WGAN_RATE_AUTH_FAILURES_PER_MINUTE": "1000",
    "WGAN_WRITE_RETRY_SECONDS": "30",
    "WGAN_WORKER_NICE": "0",
    "WGAN_WORKER_TORCH_THREADS": "1",
    "WGAN_LOG_LEVEL": "INFO",
    # Webhook receivers in tests listen on 127.0.0.1, which production refuses; retries within seconds.
    "WGAN_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.1/32"]',
    "WGAN_WEBHOOK_TIMEOUT_SECONDS": "2",
    "WGAN_WEBHOOK_RETRY_FIRST_SECONDS": "0.5",
    "WGAN_WEBHOOK_RETRY_FACTOR": "2",
    "WGAN_WEBHOOK_RETRY_MAX_SECONDS": "2",
    "WGAN_WEBHOOK_MAX_ATTEMPTS": "3",
    "WGAN_WEBHOOK_SWEEP_SECONDS": "0.3",
}


def create_database(name: str) -> str:
    with psycopg.connect(PG_ADMIN, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    return f"{base}/{name}"


def drop_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def clear_redis_prefix(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)


def production_env(tag: str, root: Path) -> tuple[dict[str, str], str]:
    """Postgres + Redis, each test session in its own database and Redis key prefix."""
    database = f"wgan_test_{tag}"
    env = {
        # Each service process chooses its own OpenMP policy, as its command does in production
        # (wgan_service.openmp): not the one a benchmark or test process set for itself.
        **openmp.unset(),
        **FAST_TIMINGS,
        "WGAN_DATABASE_URL": "",  # filled in once the database exists
        "WGAN_BROKER_URL": REDIS_URL,
        "WGAN_REDIS_PREFIX": f"wgan-test-{tag}",
        "WGAN_ARTIFACT_URL": (root / "artifacts").as_uri(),
        "WGAN_DATA_DIR": str(root / "data"),
        "WGAN_CACHE_DIR": str(root / "cache"),
        # Small enough that the zip-bomb test's 64 MB of zeros is over it.
        "WGAN_MAX_UPLOAD_EXPANDED_BYTES": str(32 * 1024 * 1024),
    }
    return env, database


def embedded_env(root: Path) -> dict[str, str]:
    """No Postgres or Redis: SQLite and the SQLAlchemy Celery transport, all under `root`."""
    env = {key: value for key, value in openmp.unset().items() if not key.startswith("WGAN_")}
    env.update(FAST_TIMINGS)
    env["WGAN_DATA_DIR"] = str(root)
    return env


def new_tag() -> str:
    return uuid.uuid4().hex[:10]
