"""Following an event stream, free of I/O: a Server-Sent Events decoder, and the Follower that knows what
to ask for on each (re)connection, which event ends the stream, and how long to wait after a drop."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

import httpx

from wgan_client._core import Call
from wgan_client.errors import StreamBroken, WaitTimeout, WganError

E = TypeVar("E")
MAX_RECONNECT_WAIT_SECONDS = 10.0
DEFAULT_RETRY_SECONDS = 1.0


@dataclass(frozen=True)
class RawEvent:
    id: str | None
    type: str
    data: str


class Decoder:
    """Server-Sent Events, a line at a time, as the WHATWG HTML standard parses them (§9.2.6)."""

    def __init__(self) -> None:
        self.last_id: str | None = None
        self.retry_ms: int | None = None
        self._type = ""
        self._data: list[str] = []

    def feed(self, line: str) -> RawEvent | None:
        """The event this line completes, if it is the blank line that ends one."""
        if line == "":
            if not self._data:
                self._type = ""
                return None
            event = RawEvent(self.last_id, self._type or "message", "\n".join(self._data))
            self._type, self._data = "", []
            return event
        if line.startswith(":"):  # a comment: the server's keep-alive pings
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._type = value
        elif name == "id" and "\0" not in value:
            self.last_id = value
        elif name == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None


class Follower(Generic[E]):
    """One follow() of a stream across as many connections as it takes. Each connection asks for the
    events after the last one yielded (Last-Event-ID), so none is lost or repeated; a connection that
    drops is retried after a growing wait, at most `max_reconnects` times in a row without an event."""

    def __init__(
        self,
        path: str,
        decode: Callable[[RawEvent], E],
        is_last: Callable[[E], bool],
        *,
        max_reconnects: int,
        timeout: float,
        deadline: float | None = None,
        last_event_id: str | None = None,
    ) -> None:
        self.path = path
        self.decode = decode
        self.is_last = is_last
        self.max_reconnects = max_reconnects
        self.timeout = timeout
        self.deadline = deadline
        self.last_id = last_event_id
        self.done = False
        self._failures = 0
        self._received = 0
        self._retry = DEFAULT_RETRY_SECONDS
        self._decoder = Decoder()

    def call(self) -> Call[httpx.Response]:
        headers: Mapping[str, str] = {"Accept": "text/event-stream"}
        if self.last_id is not None:
            headers = {**headers, "Last-Event-ID": self.last_id}
        timeout = self.timeout if self.deadline is None else max(0.1, min(self.timeout, self._remaining()))
        return Call("GET", self.path, read=lambda response: response, headers=headers, timeout=timeout)

    def opened(self, response: httpx.Response) -> bool:
        """Whether the (checked) response is a stream to read; 204 says the client already has every event."""
        self._decoder = Decoder()
        self._decoder.last_id = self.last_id
        self._received = 0
        if response.status_code == 204:
            self.done = True
            return False
        kind = response.headers.get("content-type", "")
        if not kind.startswith("text/event-stream"):
            raise WganError(f"expected an event stream from {self.path}, got {kind or 'no content type'}")
        return True

    def line(self, line: str) -> E | None:
        """The event this line completes, if any; the stream is done after its last event."""
        self._check_deadline()
        raw = self._decoder.feed(line)
        if self._decoder.retry_ms is not None:
            self._retry = self._decoder.retry_ms / 1000
        if raw is None:
            return None
        # Only now, with the whole event in hand: a connection cut inside an event resumes before it.
        self.last_id = raw.id
        self._failures = 0
        self._received += 1
        event = self.decode(raw)
        self.done = self.is_last(event)
        return event

    def dropped(self, error: Exception) -> float:
        """Seconds to wait before reconnecting after the connection broke, or the error to give up with."""
        self._check_deadline()
        self._failures += 1
        if self._failures > self.max_reconnects:
            raise StreamBroken(f"{self.path}: the stream dropped {self._failures} times in a row ({error})") from error
        return min(MAX_RECONNECT_WAIT_SECONDS, self._retry * 2.0 ** (self._failures - 1))

    def ended(self) -> float:
        """Seconds to wait before reconnecting after the server closed the stream before its last event
        (a stream has a lifetime): at once, unless that connection brought nothing at all."""
        if self._received:
            return 0.0
        return self.dropped(WganError("the stream closed without an event"))

    def _remaining(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - time.monotonic()

    def _check_deadline(self) -> None:
        if self._remaining() <= 0:
            raise WaitTimeout(f"{self.path}: the stream had not ended when the time ran out")
