"""Request body size limits, answered as problem details (413) before the body is read whole."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.problems import PROBLEM_JSON, problem_body


class BodyLimit:
    """Refuses bodies over `default` bytes, or over a larger limit on the paths given in `larger`.

    Content-Length is checked up front; a body without one (chunked) is counted as it arrives.
    """

    def __init__(self, app: ASGIApp, default: int, larger: dict[str, int]) -> None:
        self.app = app
        self.default = default
        self.larger = larger

    def limit_for(self, path: str) -> int:
        return self.larger.get(path.rstrip("/"), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        length = next((value for name, value in scope["headers"] if name == b"content-length"), None)
        if length is not None and length.isdigit():
            if int(length) > limit:
                await self._refuse(scope, send, limit)
            else:
                # The server hands on at most Content-Length bytes (its parser reads no further): nothing to count.
                await self.app(scope, receive, send)
            return
        received = 0
        started = refused = False

        async def counting() -> Message:
            # Answered here, the moment the body passes the limit: an exception raised into the app's body
            # read is taken by FastAPI for a body it could not parse (a 400). The app is told the client
            # has gone, and whatever it sends after is dropped.
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    if not started:
                        await self._refuse(scope, send, limit)
                    return {"type": "http.disconnect"}
            return message

        async def tracking(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting, tracking)
        except Exception:
            # After the 413 the app's end, however it comes (a disconnect it raises), answers nothing.
            if not refused:
                raise

    @staticmethod
    async def _refuse(scope: Scope, send: Send, limit: int) -> None:
        body = json.dumps(problem_body(413, f"the request body is larger than {limit} bytes", scope["path"])).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
