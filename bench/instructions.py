"""Instructions a server executes per request, counted by callgrind: a figure the host's noise does not move.

CPU time per request on a shared 2-core host moves by a third between runs of the same code (bench
request-cost: the anchor's POST from 2.45 to 3.98 ms in one run), so a change of a few percent cannot be
seen in it. The instructions executed for the same requests move far less, as they are counted, not timed:
callgrind (valgrind) counts them in every thread of the server, user space only. The kernel's share of a
request (its syscalls, the context switches between threads) is not in the count, and the CPU figures do
hold it: the two say different things, and both are reported.

The server starts uninstrumented (`--instr-atstart=no`, its imports at a fraction of valgrind's full cost);
instrumentation is switched on for a warm-up, the counters zeroed, the requests sent over one keep-alive
connection, and the counters dumped (callgrind_control).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from bench.api_load import closed_loop

WARM_UP = 20
START_SECONDS = 300


def available() -> bool:
    return shutil.which("valgrind") is not None and shutil.which("callgrind_control") is not None


def _control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True, timeout=120)


def _total(dump: Path) -> int:
    for line in dump.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise ValueError(f"no totals in {dump}")


def per_request(
    command: list[str], env: dict[str, str], url: str, requests: dict[str, tuple[bytes, int]], count: int
) -> dict[str, float]:
    """Instructions per request of each kind in `requests` (its raw HTTP and the status it must answer),
    `count` of each, from the server `command` started under callgrind and listening at `url`."""
    with tempfile.TemporaryDirectory(prefix="wgan-callgrind-") as scratch:
        out = Path(scratch) / "callgrind.out"
        server = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}", *command],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_listening(server, url)
            _control(server.pid, "--instr=on")
            counts: dict[str, float] = {}
            for kind, (raw, expected) in requests.items():
                asyncio.run(closed_loop(url, raw, expected, 1, WARM_UP))
                time.sleep(1)  # what the warm-up left to do after answering (a deferred broker send)
                _control(server.pid, "--zero")
                _, wrong = asyncio.run(closed_loop(url, raw, expected, 1, count))
                time.sleep(1)  # the same for the counted requests: theirs belongs in the count
                if wrong:
                    raise RuntimeError(f"{kind}: {wrong} of {count} answers were not {expected}")
                before = set(Path(scratch).iterdir())
                _control(server.pid, f"--dump={kind}")
                counts[kind] = _total(_new_dump(Path(scratch), before)) / count
            return counts
        finally:
            server.terminate()
            try:
                server.wait(60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _new_dump(directory: Path, before: set[Path]) -> Path:
    """The dump file that appeared in `directory`, once callgrind has written it whole."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        made = set(directory.iterdir()) - before
        if made:
            (dump,) = made
            text = dump.read_text()
            if "totals:" in text or "summary:" in text:
                return dump
        time.sleep(0.5)
    raise TimeoutError("callgrind wrote no dump")


def _wait_listening(server: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server under callgrind exited with {server.returncode}")
        try:
            httpx.get(f"{url}/", timeout=5)
            return
        except httpx.HTTPError:
            time.sleep(1)
    raise TimeoutError(f"the server under callgrind did not answer within {START_SECONDS} s")
