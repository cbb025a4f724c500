"""A TCP proxy on 127.0.0.1 in front of a real server, which can cut a connection after so many bytes of
its answer: what a client sees when a load balancer, a NAT or the network drops it mid-response."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Callable
from urllib.parse import urlsplit

# Given a connection's index (0 for the first) and the first bytes its client sent, how many bytes of the
# server's answer to pass before cutting it; None passes everything.
Rule = Callable[[int, bytes], int | None]
IDLE_SECONDS = 120


class CuttingProxy:
    def __init__(self, upstream_url: str, rule: Rule) -> None:
        parts = urlsplit(upstream_url)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.rule = rule
        self.cuts = 0
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def __enter__(self) -> CuttingProxy:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                index = self.connections
                self.connections += 1
            threading.Thread(target=self._pipe, args=(client, index), daemon=True).start()

    def _pipe(self, client: socket.socket, index: int) -> None:
        upstream = socket.create_connection(self.upstream)
        try:
            head = client.recv(65536)
            if not head:
                return
            limit = self.rule(index, head)
            upstream.sendall(head)
            passed = 0
            while True:
                ready, _, _ = select.select([client, upstream], [], [], IDLE_SECONDS)
                if not ready:
                    return
                if client in ready:
                    data = client.recv(65536)
                    if not data:
                        return
                    upstream.sendall(data)
                if upstream in ready:
                    data = upstream.recv(65536)
                    if not data:
                        return
                    if limit is not None:
                        data = data[: limit - passed]
                    client.sendall(data)
                    passed += len(data)
                    if limit is not None and passed >= limit:
                        with self._lock:
                            self.cuts += 1
                        return
        except OSError:
            return
        finally:
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
