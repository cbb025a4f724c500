"""A chaos soak on loopback: many jobs while workers are SIGKILLed, SIGTERMed and frozen, the API is
killed, and Redis and Postgres are restarted under them. Every job must end whole (succeeded, each
metric step once, its event log gapless) and the broker must never hold more task messages than there
are queued jobs plus workers (before the sent-task markers, a 10-minute soak left 533 for 19 jobs).

It runs private Redis and PostgreSQL servers (tests/support/local_servers.py), so nothing else on the
machine is disturbed.
"""

from __future__ import annotations

import random
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import redis

from bench.common import Benchmark, Context, Result, table, verdict
from bench.service_stack import LOG_DIR
from tests.faults.conftest import FAULT_SPEC
from tests.support.isolated import Stack
from tests.support.local_servers import LocalPostgres, LocalRedis
from tests.support.processes import ServiceProcess

JOBS = 16
LOG_EVERY = 5
STEPS = 400
WORKERS = 2
CHAOS_SECONDS = 120
ACTION_EVERY_SECONDS = 5.0
FROZEN_SECONDS = 10.0
FINISH_TIMEOUT_SECONDS = 900
ACTIONS = (
    "kill -9 a worker",
    "SIGTERM a worker",
    "freeze a worker",
    "kill the API",
    "restart Redis",
    "restart Postgres",
)


class Monitor(threading.Thread):
    """Samples the broker's queue against the jobs that may be waiting in it, twice a second."""

    def __init__(self, stack: Stack, broker_url: str, queue: str) -> None:
        super().__init__(daemon=True)
        self.stack, self.broker_url, self.queue = stack, broker_url, queue
        self.samples: list[tuple[int, int]] = []  # (messages, queued jobs)
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.5):
            try:
                messages = int(redis.Redis.from_url(self.broker_url, socket_timeout=1).llen(self.queue))
                queued = int(self.stack.scalar("SELECT count(*) FROM jobs WHERE status IN ('queued', 'waiting')"))
            except Exception:
                continue
            self.samples.append((messages, queued))

    def stop(self) -> None:
        self._done.set()
        self.join()


def _restart(process: ServiceProcess) -> None:
    process.kill()
    process.start()


def _chaos(
    stack: Stack, workers: list[ServiceProcess], api: ServiceProcess, pg: LocalPostgres, rd: LocalRedis
) -> dict[str, int]:
    done: dict[str, int] = dict.fromkeys(ACTIONS, 0)
    rng = random.Random(0)
    deadline = time.monotonic() + CHAOS_SECONDS
    step = 0
    while time.monotonic() < deadline:
        action = ACTIONS[step % len(ACTIONS)]
        worker = rng.choice(workers)
        if action == "kill -9 a worker":
            _restart(worker)
        elif action == "SIGTERM a worker":
            worker.signal(signal.SIGTERM)  # warm shutdown: checkpoint and hand the job back
            if worker.proc is not None:
                worker.proc.wait(60)
            worker.start()
        elif action == "freeze a worker":
            worker.signal(signal.SIGSTOP)
            time.sleep(FROZEN_SECONDS)  # past claim_stale_seconds: its job is taken over meanwhile
            worker.signal(signal.SIGCONT)
        elif action == "kill the API":
            _restart(api)
        elif action == "restart Redis":
            rd.kill()
            time.sleep(1)
            rd.start()  # no persistence: the queue and the markers are gone
        else:
            pg.stop("immediate")
            time.sleep(1)
            pg.start()
        done[action] += 1
        step += 1
        time.sleep(ACTION_EVERY_SECONDS)
    return done


def _whole(stack: Stack, job_id: str) -> dict[str, Any]:
    job = stack.job(job_id)
    steps = stack.metric_steps(job_id)
    seqs = [row[0] for row in stack.rows("SELECT seq FROM events WHERE job_id = :id ORDER BY seq", id=job_id)]
    return {
        "status": job["status"],
        "attempts": job["attempts"],
        "steps_ok": steps == list(range(LOG_EVERY, STEPS + 1, LOG_EVERY)),
        "events_ok": seqs == list(range(1, len(seqs) + 1)) and len(seqs) == job["event_seq"],
    }


def run(ctx: Context) -> Result:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="wgan-soak-") as root:
        pg_dir = Path("/tmp") / f"wgan-soak-pg-{time.monotonic_ns()}"
        pg = LocalPostgres(pg_dir)
        pg.init()
        rd = LocalRedis(Path(root) / "redis")
        rd.start()
        stack = Stack(
            Path(root) / "stack",
            LOG_DIR,
            database_url=pg.url,
            broker_url=rd.url,
            claim_stale_seconds="6",
            max_running_per_owner="32",
            rate_jobs_per_minute="0",
        )
        monitor = Monitor(stack, rd.url, f"{stack.env['WGAN_REDIS_PREFIX']}:cpu")
        try:
            api = stack.api()
            workers = [stack.worker(f"worker-{i}") for i in range(WORKERS)]
            steps = ctx.steps(STEPS, STEPS)
            with stack.client() as client:
                spec = {**FAULT_SPEC, "steps": steps, "log_every": LOG_EVERY}
                jobs = [client.post("/api/v1/jobs", json=spec).json()["id"] for _ in range(ctx.steps(JOBS, 4))]
            monitor.start()
            actions = _chaos(stack, workers, api, pg, rd) if not ctx.quick else dict.fromkeys(ACTIONS, 0)
            for worker in workers:
                if not worker.alive():
                    worker.start()
            deadline = time.monotonic() + FINISH_TIMEOUT_SECONDS
            while time.monotonic() < deadline:
                try:
                    finished = stack.scalar(
                        "SELECT count(*) FROM jobs WHERE status IN ('succeeded', 'failed', 'cancelled')"
                    )
                except Exception:
                    finished = 0
                if finished == len(jobs):
                    break
                time.sleep(1)
            monitor.stop()
            rows = [{"job": job_id, **_whole(stack, job_id)} for job_id in jobs]
        finally:
            stack.close()
            rd.kill()
            try:
                pg.stop("fast")
            finally:
                shutil.rmtree(pg_dir, ignore_errors=True)
    excess = max((messages - queued - WORKERS for messages, queued in monitor.samples), default=0)
    whole = sum(row["status"] == "succeeded" and row["steps_ok"] and row["events_ok"] for row in rows)
    return {
        "jobs": len(rows),
        "steps": STEPS,
        "whole": whole,
        "rows": rows,
        "actions": actions,
        "samples": len(monitor.samples),
        "max_messages": max((m for m, _ in monitor.samples), default=0),
        "max_excess": excess,
        "seconds": time.monotonic() - started,
        "passed": whole == len(rows) and excess <= 0,
    }


def render(data: Result) -> str:
    actions = table(["fault", "times"], [(name, count) for name, count in data["actions"].items()])
    attempts = sorted(row["attempts"] for row in data["rows"])
    excess = f"{max(data['max_excess'], 0)} | {verdict(data['max_excess'] <= 0)} (none)"
    return f"""\
{data["jobs"]} jobs of {data["steps"]} steps (8gaussians, MLP 16×2, a checkpoint every 50 steps) on {WORKERS}
workers, with private Redis and PostgreSQL servers, while one fault every {ACTION_EVERY_SECONDS:g} s for
{CHAOS_SECONDS} s went round the list below (a frozen worker stays stopped {FROZEN_SECONDS:g} s, past its
claim's staleness, so its job is taken over). Then every job was waited for. A job is whole when it
succeeded, its metric steps are exactly {LOG_EVERY}, {2 * LOG_EVERY}, … {data["steps"]}
(none lost, none twice) and its event log is numbered without a gap. The broker's queue was sampled
{data["samples"]} times against the jobs that could be waiting in it.

{actions}

| measure | value | bar |
|---|---|---|
| whole jobs | {data["whole"]}/{data["jobs"]} | {verdict(data["whole"] == data["jobs"])} (all) |
| most task messages in the broker at once | {data["max_messages"]} | – |
| most messages beyond queued jobs + workers | {excess} |
| claims per job (attempts), min / median / max | {attempts[0]} / {attempts[len(attempts) // 2]} / {attempts[-1]} | – |
| wall time | {data["seconds"] / 60:.1f} min | – |
"""


BENCHMARK = Benchmark(
    name="soak",
    title="Chaos soak: workers killed and frozen, the API killed, Redis and Postgres restarted",
    summary="16 jobs through every fault at once: every job whole, no flood of duplicate task messages",
    run=run,
    render=render,
)
