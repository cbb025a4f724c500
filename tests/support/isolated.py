"""A private service stack (own database, Redis prefix, artifacts) for tests that break things."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, text

from service.db import make_engine
from service.migrate import upgrade
from tests.support import faults, stack
from tests.support.processes import ROOT, ServiceProcess, free_port, start_api, start_worker


class Stack:
    def __init__(
        self, root: Path, log_dir: Path, database_url: str | None = None, broker_url: str | None = None, **settings: str
    ) -> None:
        self.tag = stack.new_tag()
        self.root = root
        self.log_dir = log_dir
        self.database_name: str | None = None
        if database_url is None:
            self.database_name = f"wgan_fault_{self.tag}"
            database_url = stack.create_database(self.database_name)
        upgrade(database_url)
        self.database_url = database_url
        self.env, _ = stack.production_env(self.tag, root)
        self.env["WGAN_DATABASE_URL"] = database_url
        if broker_url is not None:
            self.env["WGAN_BROKER_URL"] = broker_url
        fault = settings.pop("fault", None)
        if fault is not None:
            self.env.update(faults.stack_env(fault))
        self.env.update({f"WGAN_{key.upper()}": value for key, value in settings.items()})
        self.engine: Engine = make_engine(database_url)
        self.processes: list[ServiceProcess] = []
        self.api_port = free_port()
        self.api_url = ""

    def worker(self, name: str = "worker", queues: str = "cpu") -> ServiceProcess:
        process = start_worker(self.env, self.log_dir, name=f"{self.tag}-{name}", queues=queues)
        self.processes.append(process)
        return process

    def api(self) -> ServiceProcess:
        process, self.api_url = start_api(self.env, self.log_dir, port=self.api_port, name=f"{self.tag}-api")
        self.processes.append(process)
        return process

    def key(self) -> str:
        """A key for a new owner."""
        made = subprocess.run(
            [sys.executable, "-m", "wgan_service", "keys", "create", "--name", f"o-{stack.new_tag()}"],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        return made.stdout.strip()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.api_url, headers={"Authorization": f"Bearer {self.key()}"}, timeout=30)

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as connection:
            return connection.execute(text(sql), params).scalar()

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(text(sql), params).all())

    def rows_json(self, sql: str, **params: Any) -> list[Any]:
        """The first column of each row, a JSON value (decoded on Postgres and SQLite alike)."""
        return [value if not isinstance(value, str) else json.loads(value) for value, *_ in self.rows(sql, **params)]

    def job(self, job_id: str) -> dict[str, Any]:
        with self.engine.connect() as connection:
            row = connection.execute(text("SELECT * FROM jobs WHERE id = :id"), {"id": job_id}).mappings().one()
            return dict(row)

    def wait_job(
        self, job_id: str, predicate: Callable[[dict[str, Any]], bool], timeout: float, what: str
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if predicate(job):
                return job
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {p.name}\n{p.log()[-3000:]}" for p in self.processes)
                raise AssertionError(
                    f"timed out waiting for {what}; job is {job['status']} at {job['progress_step']}\n{logs}"
                )
            time.sleep(0.1)

    def metric_steps(self, job_id: str) -> list[int]:
        return [row[0] for row in self.rows("SELECT step FROM metrics WHERE job_id = :id ORDER BY step", id=job_id)]

    def close(self) -> None:
        for process in self.processes:
            process.kill()
        self.engine.dispose()
        if self.database_name:
            stack.drop_database(self.database_name)
        stack.clear_redis_prefix(self.env["WGAN_REDIS_PREFIX"])
