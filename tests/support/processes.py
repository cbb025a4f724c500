"""Real service processes for tests: start, wait until ready, stop or kill, read their logs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServiceProcess:
    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path, cwd: Path = ROOT) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.cwd = cwd
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.args, env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, text: str, timeout: float, after: int = 0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log()[after:]:
                return
            if not self.alive():
                raise RuntimeError(f"{self.name} exited early:\n{self.log()[-4000:]}")
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} did not log {text!r} in {timeout} s:\n{self.log()[-4000:]}")

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL the process group: no cleanup runs, like a machine losing power."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 30) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def start_worker(env: dict[str, str], log_dir: Path, name: str = "worker", queues: str = "cpu") -> ServiceProcess:
    worker = ServiceProcess(name, python("-m", "wgan_service", "worker", "--queues", queues), env, log_dir).start()
    try:
        worker.wait_for_log("ready on queues", timeout=90)
    except BaseException:
        worker.kill()  # never leave a half-started worker consuming someone's queue
        raise
    return worker


def start_webhook_sender(env: dict[str, str], log_dir: Path, name: str = "webhooks") -> ServiceProcess:
    sender = ServiceProcess(name, python("-m", "wgan_service", "webhooks"), env, log_dir).start()
    try:
        sender.wait_for_log("webhook sender ready", timeout=90)
    except BaseException:
        sender.kill()
        raise
    return sender


def start_api(
    env: dict[str, str], log_dir: Path, port: int | None = None, name: str = "api"
) -> tuple[ServiceProcess, str]:
    port = port or free_port()
    api = ServiceProcess(name, python("-m", "wgan_service", "serve", "--port", str(port)), env, log_dir).start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return api, url
        except httpx.HTTPError:
            pass
        if not api.alive():
            raise RuntimeError(f"api exited early:\n{api.log()[-4000:]}")
        time.sleep(0.1)
    api.kill()
    raise TimeoutError(f"api did not come up:\n{api.log()[-4000:]}")
