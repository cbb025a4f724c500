"""The `wgan-service` command: serve, worker, webhooks, dev, migrate, keys, submit."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from service.settings import Settings
from wgan_service import openmp

DEV_KEY_FILE = "dev-api-key"
WORKER_ALIVE_FILE = "worker-alive"
SENDER_ALIVE_FILE = "webhooks-alive"
WORKER_STOP_SECONDS = 30
READY_WAIT_SECONDS = 120
HEALTH_TIMEOUT_SECONDS = 2


def _serve(settings: Settings, host: str | None, port: int | None) -> int:
    import uvicorn

    from app.http_protocol import bounded_head_protocol
    from app.main import create_app

    uvicorn.run(
        create_app(settings),
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        access_log=settings.access_log,
        timeout_graceful_shutdown=5,
        http=bounded_head_protocol(settings.http_max_header_bytes),
        limit_concurrency=settings.http_max_connections,
        timeout_keep_alive=settings.http_keep_alive_seconds,
    )
    return 0


def _worker(settings: Settings, queues: str | None, quiet: bool = False) -> int:
    from service.fencing import session_name
    from service.heap import freeze_startup_heap
    from service.logging_setup import configure_logging
    from service.runtime import Runtime
    from worker.app import new_worker_id, worker_app

    configure_logging(settings)
    worker_id = new_worker_id()
    app = worker_app(Runtime.start(settings, db_session_name=session_name(worker_id)), worker_id)
    names = queues or settings.worker_queues
    freeze_startup_heap()
    # Solo pool: the task runs in the worker's main process, which is never forked, so a
    # process that has initialised CUDA stays safe. One process trains one job; run more
    # processes (or hosts) to train more at once.
    app.worker_main(
        [
            *(["--quiet"] if quiet else []),
            "worker",
            "--pool=solo",
            "--concurrency=1",
            f"--queues={names}",
            f"--loglevel={settings.log_level}",
            f"--hostname=wgan-{names.replace(',', '-')}-{os.getpid()}@%h",
            "--without-gossip",
            "--without-mingle",
        ]
    )
    return 0


def _webhooks(settings: Settings, quiet: bool = False) -> int:
    from service.logging_setup import configure_logging
    from service.queue import WEBHOOK_QUEUE
    from worker.webhooks import webhook_app

    configure_logging(settings)
    # Threads, not processes: an attempt mostly waits on a receiver, and one that hangs holds one thread
    # for at most webhook_timeout_seconds while the others go on.
    webhook_app(settings).worker_main(
        [
            *(["--quiet"] if quiet else []),
            "worker",
            "--pool=threads",
            f"--concurrency={settings.webhook_concurrency}",
            f"--queues={WEBHOOK_QUEUE}",
            f"--loglevel={settings.log_level}",
            f"--hostname=wgan-webhooks-{os.getpid()}@%h",
            "--without-gossip",
            "--without-mingle",
        ]
    )
    return 0


def _migrate(settings: Settings) -> int:
    from service.artifacts import store_for
    from service.migrate import upgrade

    upgrade(settings.database_url)
    store_for(settings).prepare()
    print(
        f"database at head: {settings.database_url.split('@')[-1]}; artifacts at {settings.artifact_url}",
        file=sys.stderr,
    )
    return 0


def _dev_key(settings: Settings) -> str:
    """The embedded default's key, made on first start and kept under data_dir for the next."""
    from service.auth import create_key
    from service.db import Database

    path = settings.data_dir / DEV_KEY_FILE
    if path.exists():
        return path.read_text().strip()
    db = Database.from_settings(settings)
    with db.transaction() as session:
        key = create_key(session, name="dev", owner="dev").key
    db.dispose()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created owner-only: a secret is never readable by others, not even between a write and a chmod.
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        file.write(key + "\n")
    return key


def _api_is_up(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=HEALTH_TIMEOUT_SECONDS) as response:  # noqa: S310
            return bool(response.status == 200)
    except (OSError, ValueError):
        return False


def _announce_when_ready(url: str, alive: list[Path], key: str | None, key_file: Path) -> None:
    """Say where things are once the API answers and the worker and the webhook sender are up, so it is
    the last thing on screen."""
    deadline = time.monotonic() + READY_WAIT_SECONDS
    while not (all(path.exists() for path in alive) and _api_is_up(url)):
        if time.monotonic() > deadline:
            print(f"\n  wgan-service: not ready after {READY_WAIT_SECONDS} s; see the log above\n", file=sys.stderr)
            return
        time.sleep(0.2)
    lines = [
        "wgan-service is ready",
        f"  dashboard  {url}/",
        f"  API docs   {url}/docs",
    ]
    if key:
        lines.append(f"  API key    {key}")
        lines.append(f"             (kept in {key_file}; try README.md's curl walk-through)")
    print("\n" + "\n".join(f"  {line}" for line in lines) + "\n", file=sys.stderr, flush=True)


def _dev(settings: Settings, host: str | None, port: int | None, chosen: dict[str, str]) -> int:
    """Migrate, start a worker process beside the API, and serve until interrupted."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _migrate(settings)
    key = _dev_key(settings) if settings.embedded else None
    alive = settings.worker_alive_file or settings.data_dir / WORKER_ALIVE_FILE
    sender_alive = settings.data_dir / SENDER_ALIVE_FILE
    for path in (alive, sender_alive):
        path.unlink(missing_ok=True)
    # Each child chooses its own OpenMP policy (the worker spins, boundedly; wgan_service.openmp).
    children = openmp.without(chosen)
    worker = subprocess.Popen(
        [sys.executable, "-m", "wgan_service", "worker", "--quiet"],
        env={**children, "WGAN_WORKER_ALIVE_FILE": str(alive)},
    )
    sender = subprocess.Popen(
        [sys.executable, "-m", "wgan_service", "webhooks", "--quiet"],
        env={**children, "WGAN_WORKER_ALIVE_FILE": str(sender_alive)},
    )
    url = f"http://{host or settings.host}:{port or settings.port}"
    threading.Thread(
        target=_announce_when_ready,
        args=(url, [alive, sender_alive], key, settings.data_dir / DEV_KEY_FILE),
        daemon=True,
    ).start()
    # uvicorn re-raises the SIGTERM it stopped for once it is done, through the handler it found: this one
    # turns it into SystemExit, so the finally below stops the children. Under the default handler the
    # process died at once and left its worker and webhook sender running, orphaned.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        return _serve(settings, host, port)
    finally:
        for child in (worker, sender):
            child.send_signal(signal.SIGTERM)
        for child in (worker, sender):
            try:
                child.wait(WORKER_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                child.kill()


def _healthcheck(settings: Settings, role: str) -> int:
    """A container's health: the API answers /healthz; a worker touched its alive file lately."""
    if role == "api":
        url = f"http://127.0.0.1:{settings.port}"
        if _api_is_up(url):
            return 0
        print(f"unhealthy: {url}/healthz does not answer 200", file=sys.stderr)
        return 1
    path = settings.worker_alive_file
    if path is None:
        print("unhealthy: WGAN_WORKER_ALIVE_FILE is not set, so the worker leaves no sign of life", file=sys.stderr)
        return 1
    try:
        age = time.time() - path.stat().st_mtime
    except OSError:
        print(f"unhealthy: no {path} yet (the worker has not started)", file=sys.stderr)
        return 1
    if age > settings.claim_stale_seconds:
        print(f"unhealthy: the worker last touched {path} {age:.0f} s ago", file=sys.stderr)
        return 1
    return 0


def _keys(settings: Settings, args: argparse.Namespace) -> int:
    from service.auth import create_key
    from service.db import Database
    from service.repositories import keys as key_repo

    with Database.from_settings(settings).transaction() as session:
        if args.keys_command == "create":
            made = create_key(session, name=args.name, owner=args.owner, is_admin=args.admin)
            print(
                f"created key {made.id} ({made.prefix}) for owner {made.owner!r}"
                f"{' with admin rights' if made.is_admin else ''}; it is shown only now:",
                file=sys.stderr,
            )
            print(made.key)
        elif args.keys_command == "list":
            print(f"{'id':36}  {'prefix':8}  {'owner':20}  {'name':20}  {'admin':5}  status")
            for row, owner in key_repo.all_with_owners(session):
                state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "active"
                print(
                    f"{row.id:36}  {row.prefix:8}  {owner.name[:20]:20}  {row.name[:20]:20}  "
                    f"{'yes' if row.is_admin else 'no':5}  {state}"
                )
        else:
            revoked = key_repo.revoke(session, args.key)
            if revoked is None:
                print(f"no key {args.key!r}", file=sys.stderr)
                return 1
            print(f"revoked {revoked.id} ({revoked.prefix})", file=sys.stderr)
    return 0


def _submit(settings: Settings, args: argparse.Namespace) -> int:
    from wgan_service import submit

    key = args.key or os.environ.get("WGAN_API_KEY") or submit.dev_key(settings.data_dir, DEV_KEY_FILE)
    url = args.url or submit.default_url(settings.host, settings.port)
    return submit.run(args.spec, follow_job=args.follow, url=url, key=key)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wgan-service", description="Train and serve Wasserstein GANs.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("serve", "run the HTTP API"),
        ("dev", "migrate, then run the API, a worker and the webhook sender together"),
    ):
        command = sub.add_parser(name, help=text, description=text)
        command.add_argument("--host", help="address to bind (WGAN_HOST)")
        command.add_argument("--port", type=int, help="port (WGAN_PORT)")
    worker = sub.add_parser("worker", help="run a training worker", description="Run a Celery training worker.")
    worker.add_argument("--queues", help="comma-separated: cpu, or gpu,cpu on a GPU host (WGAN_WORKER_QUEUES)")
    worker.add_argument("--quiet", action="store_true", help="leave out Celery's start-up banner")
    hooks = sub.add_parser(
        "webhooks",
        help="run the webhook sender",
        description="Run the Celery worker that delivers webhooks (the webhooks queue), apart from training.",
    )
    hooks.add_argument("--quiet", action="store_true", help="leave out Celery's start-up banner")
    sub.add_parser("migrate", help="bring the database schema to the newest migration")
    health = sub.add_parser(
        "healthcheck",
        help="exit 0 when this host's API or worker is healthy (for container health checks)",
        description="Exit 0 when healthy: the API answers /healthz on WGAN_PORT; a worker touched "
        "WGAN_WORKER_ALIVE_FILE within claim_stale_seconds.",
    )
    health.add_argument("role", choices=["api", "worker"], help="what this container runs")
    keys = sub.add_parser("keys", help="manage API keys")
    key_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = key_sub.add_parser("create", help="make a key; it is printed once")
    create.add_argument("--name", required=True, help="what the key is for")
    create.add_argument("--owner", help="the owner its jobs belong to (default: --name)")
    create.add_argument("--admin", action="store_true", help="may see every owner's jobs")
    key_sub.add_parser("list", help="list keys (never the keys themselves)")
    revoke = key_sub.add_parser("revoke", help="revoke a key by id or prefix")
    revoke.add_argument("key", help="the key's id or its prefix")
    submit = sub.add_parser(
        "submit",
        help="submit a job spec (JSON) to a running service",
        description="Submit a job spec through the Python client (wgan_client); --follow shows its training.",
    )
    submit.add_argument("spec", help="a JSON file with the job spec, or - for standard input")
    submit.add_argument(
        "--follow", action="store_true", help="show progress until the job ends; exit 1 unless it succeeded"
    )
    submit.add_argument("--url", help="the service (default: WGAN_URL, else this host's WGAN_HOST and WGAN_PORT)")
    submit.add_argument("--key", help="API key (default: WGAN_API_KEY, else the embedded default's dev key)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The one place a process reads its settings (WGAN_* variables, .env); everything below is passed them.
    settings = Settings()
    # Before anything loads torch, which reads it once.
    chosen = openmp.configure(args.command, settings)
    if args.command == "serve":
        return _serve(settings, args.host, args.port)
    if args.command == "worker":
        return _worker(settings, args.queues, args.quiet)
    if args.command == "webhooks":
        return _webhooks(settings, args.quiet)
    if args.command == "healthcheck":
        return _healthcheck(settings, args.role)
    if args.command == "dev":
        return _dev(settings, args.host, args.port, chosen)
    if args.command == "migrate":
        return _migrate(settings)
    if args.command == "submit":
        return _submit(settings, args)
    return _keys(settings, args)


if __name__ == "__main__":
    sys.exit(main())
