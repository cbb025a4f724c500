"""Real webhook receivers on 127.0.0.1 for tests: HTTP servers that answer as told (200, 500 then 200,
a redirect, or not at all) and keep every request they got."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.processes import free_port


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """`answer(n)` gives the status for the n-th request (0-based); None means hang until the test ends."""

    answer: Callable[[int], int | None]
    location: str = ""
    received: list[Received] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def of_type(self, kind: str) -> list[Received]:
        return [item for item in self.received if item.json["type"] == kind]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            item = Received({k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length), time.monotonic())
            index = len(receiver.received)
            receiver.received.append(item)
            status = receiver.answer(index)
            if status is None:
                receiver.released.wait(120)
                return
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", receiver.location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def receiving(answer: Callable[[int], int | None] = lambda _: 200, location: str = "") -> Iterator[Receiver]:
    receiver = Receiver(answer, location)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.released.set()
        server.shutdown()
        server.server_close()


def closed_port_url() -> str:
    """A URL where nothing listens: a receiver that is down."""
    return f"http://127.0.0.1:{free_port()}/hook"
