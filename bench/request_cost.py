"""What one request costs the server: CPU per GET and POST /api/v1/jobs against a minimal anchor app.

Both apps run side by side on one database and one Redis, behind the same uvicorn settings
(bench.anchor_app); a closed-loop client in this process sends a fixed number of requests over 1, 8 and
32 keep-alive connections, the apps taking turns, several rounds. Server CPU is read from /proc (user +
system time of the server process, all its threads), Postgres CPU from the backends serving the
database, and new Postgres sessions from pg_stat_database.sessions (PostgreSQL 14+).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import httpx

from bench import instructions
from bench.api_load import SUBMITTED, closed_loop, raw_requests
from bench.common import Benchmark, Context, Result, cpu_seconds, median, num, table, verdict
from bench.service_stack import LOG_DIR, service_stack
from tests.support.isolated import Stack
from tests.support.processes import ServiceProcess, free_port, python

BAR_RATIO = 1.2
# Requests of each kind counted under callgrind (bench.instructions): about 50x slower there.
COUNTED = 100
CONCURRENCY = (1, 8, 32)
APPS = ("service", "anchor")
KINDS = ("get", "post")


def _postgres(stack: Stack) -> tuple[int, float]:
    """Sessions ever opened on the stack's database, and the CPU of the backends serving it now."""
    assert stack.database_name is not None
    sessions = int(stack.scalar("SELECT sessions FROM pg_stat_database WHERE datname = :d", d=stack.database_name))
    pids = [row[0] for row in stack.rows("SELECT pid FROM pg_stat_activity WHERE datname = :d", d=stack.database_name)]
    cpu = 0.0
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            cpu += cpu_seconds(pid)
    return sessions, cpu


def _start_anchor(stack: Stack) -> tuple[ServiceProcess, str]:
    port = free_port()
    process = ServiceProcess(
        f"{stack.tag}-anchor", python("-m", "bench.anchor_app", "--port", str(port)), stack.env, LOG_DIR
    ).start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/api/v1/jobs/none", timeout=1)
            return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    raise TimeoutError(f"the anchor did not come up:\n{process.log()[-3000:]}")


def _cell(stack: Stack, pid: int, url: str, raw: bytes, expected: int, connections: int, total: int) -> dict[str, Any]:
    sessions, pg_cpu = _postgres(stack)
    cpu = cpu_seconds(pid)
    seconds, wrong = asyncio.run(closed_loop(url, raw, expected, connections, total))
    # POST's broker send runs after the response, on the sender thread: let it finish before reading CPU.
    time.sleep(0.3)
    cpu = cpu_seconds(pid) - cpu
    sessions_after, pg_cpu_after = _postgres(stack)
    return {
        "cpu_ms": 1000 * cpu / total,
        "postgres_cpu_ms": 1000 * max(0.0, pg_cpu_after - pg_cpu) / total,
        # _postgres's own reads reuse one pooled connection, opened by the warm-up.
        "new_sessions": sessions_after - sessions,
        "requests_per_second": total / seconds,
        "wrong": wrong,
    }


def run(ctx: Context) -> Result:
    total, rounds = (150, 2) if ctx.quick else (600, 3)
    cells: dict[str, list[dict[str, Any]]] = {}
    # The service as it would run behind a proxy that logs: its access log off, as the anchor's is. The
    # row with the log on says what it costs.
    with service_stack(ctx, access_log="false") as stack:
        api = stack.api()
        anchor, anchor_url = _start_anchor(stack)
        stack.processes.append(anchor)
        key = stack.key()
        with httpx.Client(base_url=stack.api_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
            job = client.post("/api/v1/jobs", json=SUBMITTED).json()["id"]
        # Counted first, on a database holding one job, as the timed cells below start.
        counted = _instructions(stack, key, job) if instructions.available() else None
        targets = {"service": (api.pid, stack.api_url), "anchor": (anchor.pid, anchor_url)}
        raws = {app: raw_requests(url, key, job) for app, (_, url) in targets.items()}
        expected = {"get": 200, "post": 202}
        for app, (pid, url) in targets.items():  # warm both: imports, caches, pools filled at full load
            for kind in KINDS:
                _cell(stack, pid, url, raws[app][kind], expected[kind], max(CONCURRENCY), 100)
        for _ in range(rounds):
            for connections in CONCURRENCY:
                for kind in KINDS:
                    for app, (pid, url) in targets.items():
                        found = _cell(stack, pid, url, raws[app][kind], expected[kind], connections, total)
                        cells.setdefault(f"{app}/{kind}/{connections}", []).append(found)
    rows = []
    for kind in KINDS:
        for connections in CONCURRENCY:
            of = {app: cells[f"{app}/{kind}/{connections}"] for app in APPS}
            cpu = {app: median(c["cpu_ms"] for c in of[app]) for app in APPS}
            rows.append(
                {
                    "kind": kind,
                    "connections": connections,
                    **{f"{app}_cpu_ms": cpu[app] for app in APPS},
                    **{f"{app}_postgres_cpu_ms": median(c["postgres_cpu_ms"] for c in of[app]) for app in APPS},
                    **{f"{app}_rps": median(c["requests_per_second"] for c in of[app]) for app in APPS},
                    **{f"{app}_new_sessions": max(c["new_sessions"] for c in of[app]) for app in APPS},
                    "wrong": sum(c["wrong"] for app in APPS for c in of[app]),
                    "ratio": cpu["service"] / cpu["anchor"],
                }
            )
    worst = {kind: max(row["ratio"] for row in rows if row["kind"] == kind) for kind in KINDS}
    passed = all(ratio <= BAR_RATIO for ratio in worst.values()) and all(
        row["service_new_sessions"] <= 0 and row["wrong"] == 0 for row in rows
    )
    return {
        "rows": rows,
        "requests_per_cell": total,
        "rounds": rounds,
        "worst": worst,
        "instructions": counted,
        "instructions_counted": COUNTED,
        "passed": passed,
    }


def _instructions(stack: Stack, key: str, job: str) -> dict[str, dict[str, float]]:
    """Instructions per GET and POST of each app, on the same database, Redis and settings as above."""
    modules = {"service": ("wgan_service", "serve"), "anchor": ("bench.anchor_app",)}
    counted = {}
    for app, module in modules.items():
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        raws = raw_requests(url, key, job)
        counted[app] = instructions.per_request(
            python("-m", *module, "--port", str(port)),
            stack.env,
            url,
            {"get": (raws["get"], 200), "post": (raws["post"], 202)},
            COUNTED,
        )
    return counted


def render(data: Result) -> str:
    rows = [
        (
            f"{row['kind'].upper()} /api/v1/jobs{'/{id}' if row['kind'] == 'get' else ''}",
            row["connections"],
            f"{num(row['service_cpu_ms'], 2)} / {num(row['anchor_cpu_ms'], 2)}",
            f"{num(row['ratio'], 2)} {verdict(row['ratio'] <= BAR_RATIO)}",
            f"{num(row['service_postgres_cpu_ms'], 2)} / {num(row['anchor_postgres_cpu_ms'], 2)}",
            f"{row['service_new_sessions']} / {row['anchor_new_sessions']}",
            f"{num(row['service_rps'], 0)} / {num(row['anchor_rps'], 0)}",
            row["wrong"],
        )
        for row in data["rows"]
    ]
    counted = data.get("instructions")
    instruction_rows = (
        [
            (
                f"{kind.upper()} /api/v1/jobs{'/{id}' if kind == 'get' else ''}",
                f"{num(counted['service'][kind] / 1e6, 2)} / {num(counted['anchor'][kind] / 1e6, 2)}",
                num(counted["service"][kind] / counted["anchor"][kind], 2),
            )
            for kind in KINDS
        ]
        if counted
        else []
    )
    instruction_part = (
        [
            "",
            f"Instructions per request, counted by callgrind ({data['instructions_counted']} requests of each "
            "kind over one connection, after a warm-up; bench/instructions.py): the apps' own work, which the "
            "host's noise does not move, without the kernel's share (syscalls, switches between threads) "
            "that the CPU figures above hold. No bar: it says where a ratio above comes from.",
            "",
            table(["request", "million instructions/request: service / anchor", "ratio"], instruction_rows),
        ]
        if counted
        else []
    )
    return "\n".join(
        [
            f"{data['requests_per_cell']} requests per cell, closed loop, the two apps taking turns; medians of "
            f"{data['rounds']} rounds (new sessions: the most in any round). The anchor (bench/anchor_app.py) is a "
            "minimal FastAPI + SQLAlchemy app making the same key read, job read, job and event insert, and a "
            "submission's Redis writes (event announced, sent-marker, task) in one round trip, one "
            "thread-pool trip per request. Both without an access log. Bar: server CPU per "
            f"request ≤ {BAR_RATIO}× the anchor's, and no new Postgres sessions under load.",
            "",
            table(
                [
                    "request",
                    "connections",
                    "server CPU ms/request: service / anchor",
                    f"ratio (bar ≤ {BAR_RATIO})",
                    "Postgres CPU ms/request",
                    "new Postgres sessions",
                    "requests/s",
                    "wrong answers",
                ],
                rows,
            ),
            *instruction_part,
        ]
    )


BENCHMARK = Benchmark(
    name="request-cost",
    title="Request cost against a minimal anchor app",
    summary="server CPU per GET and POST job against a minimal FastAPI + SQLAlchemy app, and Postgres sessions",
    run=run,
    render=render,
)
