"""The bound on request bodies that are not artifact uploads (JSON): counted as bytes arrive.

A `Content-Length` over the limit is refused before a byte of the body is read; a chunked body
is counted as it streams in and refused as soon as it crosses the limit, so no request holds
more than `OPSML_MAX_JSON_BYTES` in memory. The two artifact routes stream to storage and
enforce their own, much larger `OPSML_MAX_UPLOAD_BYTES` (app.storage.upload).

Not FastAPI's `max_body_size`: for a too-large `Content-Length`, Starlette's body-limit
middleware replaces whatever the app answers with a plain-text "Content Too Large", and the
OpsML client reads `detail` from a JSON body.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ERR_BODY_TOO_LARGE = (
    "The request body is larger than the server's limit of {limit} bytes for JSON requests "
    "(OPSML_MAX_JSON_BYTES)"
)
# Routes that stream their body to storage and count it against OPSML_MAX_UPLOAD_BYTES.
STREAMED_ROUTES = frozenset({("POST", "/opsml/files/upload"), ("PUT", "/opsml/files/signed")})


def _declared_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length", "")
    return int(value) if value.isdigit() else None


class JsonBodyLimit:
    """Pure ASGI middleware: bodies are counted, never buffered here."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.message = ERR_BODY_TOO_LARGE.format(limit=max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"], scope["path"]) in STREAMED_ROUTES:
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # FastAPI lets an HTTPException out of its body reading unchanged, so
                    # this becomes the 413 below through the app's own handler.
                    raise HTTPException(413, detail=self.message)
            return message

        await self.app(scope, counted, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        await JSONResponse({"detail": self.message}, status_code=413)(scope, receive, send)
