"""The HTTP/1.1 protocol the API serves: uvicorn's httptools parser, with the request head bounded.

httptools (llhttp, in C) parses a request in a fraction of the Python that h11 runs: h11 and uvicorn's
h11 glue were about 1,400 lines of Python per request, a fifth of a warm sample request's (bench sampling,
counted with a line tracer). But httptools reads a request head of any size (10 MB were accepted here),
where h11 stops at a bound. So this protocol counts the bytes of each request's head as they arrive, and
a read that would take the head past `max_head_bytes` before its end (the blank line, CRLF CRLF) is not
handed to the parser: the connection is answered 431 and closed.

The count starts with the connection and again after each request; it is exact but for pipelined
requests, where the bytes of one socket read that follow the previous request are not counted (at most
one read, which the event loop bounds).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

HEAD_END = b"\r\n\r\n"
TAIL = len(HEAD_END) - 1


class BoundedHeadProtocol(HttpToolsProtocol):
    max_head_bytes = 0  # set by bounded_head_protocol

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._head_pending = True  # the bytes that come next are a request head's, until it is whole
        self._head_bytes = 0
        self._head_tail = b""  # the head's last bytes so far: its end may straddle two reads

    def data_received(self, data: bytes) -> None:
        if self._head_pending:
            room = self.max_head_bytes - self._head_bytes
            if len(data) > room and HEAD_END not in self._head_tail + data[:room]:
                self._refuse_head()
                return
            self._head_bytes += len(data)
            self._head_tail = (self._head_tail + data[-TAIL:])[-TAIL:]
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._head_pending = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._head_pending, self._head_bytes, self._head_tail = True, 0, b""
        super().on_message_complete()

    def _refuse_head(self) -> None:
        message = f"the request head is larger than {self.max_head_bytes} bytes".encode()
        self.transport.write(
            b"".join(
                [
                    STATUS_LINE[431],
                    b"content-type: text/plain; charset=utf-8\r\n",
                    b"content-length: " + str(len(message)).encode() + b"\r\n",
                    b"connection: close\r\n\r\n",
                    message,
                ]
            )
        )
        self.transport.close()


def bounded_head_protocol(max_head_bytes: int) -> type[BoundedHeadProtocol]:
    """The protocol class for uvicorn's `http`, refusing heads over `max_head_bytes`."""
    return type("BoundedHeadProtocol", (BoundedHeadProtocol,), {"max_head_bytes": max_head_bytes})
