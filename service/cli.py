"""The `wgan-service` command: serve, worker, dev, migrate, keys."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

# Before anything loads torch: OpenMP threads that spin while waiting make training crawl (50x
# slower measured here) as soon as another process shares the cores, as the API, a second worker
# or a busy neighbour always does on a small host. Passive waiting costs little when idle.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from service.settings import Settings, get_settings

DEV_KEY_FILE = "dev-api-key"
WORKER_STOP_SECONDS = 30


def _serve(settings: Settings, host: str | None, port: int | None) -> int:
    import uvicorn

    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        timeout_graceful_shutdown=5,
    )
    return 0


def _worker(settings: Settings, queues: str | None) -> int:
    from service.logging_setup import configure_logging
    from worker.tasks import app

    configure_logging(settings)
    names = queues or settings.worker_queues
    # Solo pool: the task runs in the worker's main process, which is never forked, so a
    # process that has initialised CUDA stays safe. One process trains one job; run more
    # processes (or hosts) to train more at once.
    app.worker_main(
        [
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
    from service.db import transaction

    path = settings.data_dir / DEV_KEY_FILE
    if path.exists():
        return path.read_text().strip()
    with transaction() as session:
        key = create_key(session, name="dev", owner="dev").key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


def _dev(settings: Settings, host: str | None, port: int | None) -> int:
    """Migrate, start a worker process beside the API, and serve until interrupted."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _migrate(settings)
    key = _dev_key(settings) if settings.embedded else None
    worker = subprocess.Popen([sys.executable, "-m", "service.cli", "worker"])
    url = f"http://{host or settings.host}:{port or settings.port}"
    print(f"\n  wgan-service on {url}  (dashboard: {url}/, OpenAPI: {url}/openapi.json)", file=sys.stderr)
    if key:
        print(f"  API key: {key}   (also in {settings.data_dir / DEV_KEY_FILE})\n", file=sys.stderr)
    try:
        return _serve(settings, host, port)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(WORKER_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            worker.kill()


def _keys(settings: Settings, args: argparse.Namespace) -> int:
    from service.auth import create_key
    from service.db import transaction
    from service.repositories import keys as key_repo

    with transaction() as session:
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wgan-service", description="Train and serve Wasserstein GANs.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("serve", "run the HTTP API"), ("dev", "migrate, then run the API and a worker together")):
        command = sub.add_parser(name, help=text, description=text)
        command.add_argument("--host", help="address to bind (WGAN_HOST)")
        command.add_argument("--port", type=int, help="port (WGAN_PORT)")
    worker = sub.add_parser("worker", help="run a training worker", description="Run a Celery training worker.")
    worker.add_argument("--queues", help="comma-separated: cpu, or gpu,cpu on a GPU host (WGAN_WORKER_QUEUES)")
    sub.add_parser("migrate", help="bring the database schema to the newest migration")
    keys = sub.add_parser("keys", help="manage API keys")
    key_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = key_sub.add_parser("create", help="make a key; it is printed once")
    create.add_argument("--name", required=True, help="what the key is for")
    create.add_argument("--owner", help="the owner its jobs belong to (default: --name)")
    create.add_argument("--admin", action="store_true", help="may see every owner's jobs")
    key_sub.add_parser("list", help="list keys (never the keys themselves)")
    revoke = key_sub.add_parser("revoke", help="revoke a key by id or prefix")
    revoke.add_argument("key", help="the key's id or its prefix")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = get_settings()
    if args.command == "serve":
        return _serve(settings, args.host, args.port)
    if args.command == "worker":
        return _worker(settings, args.queues)
    if args.command == "dev":
        return _dev(settings, args.host, args.port)
    if args.command == "migrate":
        return _migrate(settings)
    return _keys(settings, args)


if __name__ == "__main__":
    sys.exit(main())
