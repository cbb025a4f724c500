"""A lean HTTP/1.1 load generator for benchmarks whose clients share the cores with the server.

Each client is one keep-alive connection on asyncio streams that writes a ready-made request and reads
the response by its Content-Length, nothing more, as wrk does: on this 2-core host 16 httpx clients in
threads took about 5 ms of CPU per request away from the server, which then measured the clients as
much as the service.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

HEADER_LIMIT = 64 * 1024


@dataclass
class Load:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0
    client_cpu_seconds: float = 0.0

    @property
    def errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status != 200)


def request(method: str, target: str, host: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    raise ValueError(f"a response without Content-Length: {head[:200]!r}")


async def _client(host: str, port: int, make: Callable[[int], bytes], first: int, stop: float, load: Load) -> None:
    reader, writer = await asyncio.open_connection(host, port, limit=HEADER_LIMIT)
    number = first
    try:
        while time.monotonic() < stop:
            message = make(number)
            number += 1
            start = time.perf_counter()
            writer.write(message)
            head = await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(_content_length(head))
            load.latencies.append(time.perf_counter() - start)
            status = int(head[9:12])
            load.statuses[status] = load.statuses.get(status, 0) + 1
    finally:
        writer.close()


class Connection:
    """One blocking keep-alive connection for one client asking one thing at a time: a request's latency with
    nothing of a client library's own work in it."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self._socket = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80))
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = b""

    def ask(self, message: bytes) -> tuple[int, float]:
        """The response's status and the seconds from writing `message` to its last byte read."""
        start = time.perf_counter()
        self._socket.sendall(message)
        while b"\r\n\r\n" not in self._buffer:
            self._read()
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        length = _content_length(head)
        while len(self._buffer) < length:
            self._read()
        self._buffer = self._buffer[length:]
        return int(head[9:12]), time.perf_counter() - start

    def _read(self) -> None:
        chunk = self._socket.recv(1 << 20)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self._buffer += chunk

    def close(self) -> None:
        self._socket.close()


def run(base_url: str, clients: int, seconds: float, make: Callable[[int], bytes]) -> Load:
    """`clients` connections asking one after another for `seconds`; request number i is `make(i)`
    (client k numbers its requests from k * 1,000,000)."""
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    load = Load()

    async def main() -> None:
        stop = time.monotonic() + seconds
        await asyncio.gather(*(_client(host, port, make, k * 1_000_000, stop, load) for k in range(clients)))

    started, cpu = time.perf_counter(), time.process_time()
    asyncio.run(main())
    load.seconds = time.perf_counter() - started
    load.client_cpu_seconds = time.process_time() - cpu
    return load
