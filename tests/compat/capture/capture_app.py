"""The reference opsml app wrapped in an ASGI middleware that records every exchange.

Runs inside the *reference* venv: ``uvicorn --factory capture_app:app_factory`` with this
directory on PYTHONPATH and ``CAPTURE_LOG`` naming a JSON-lines file to append to.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from opsml.app.main import run_app

LOG = os.environ["CAPTURE_LOG"]
KEEP = 4000  # characters of a body kept in the log
HEADERS = {"content-type", "content-length", "write_path", "x-prod-token", "authorization"}


def _describe(body: bytes, content_type: str) -> str:
    if content_type.startswith("multipart/form-data"):
        # Keep the part headers, summarise the file bytes.
        head, _, rest = body.partition(b"\r\n\r\n")
        return (
            head.decode("latin-1") + f"\r\n\r\n<{len(rest)} bytes: file content + closing boundary>"
        )
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return f"<{len(body)} binary bytes>"
    return text if len(text) <= KEEP else text[:KEEP] + f"...<{len(text)} chars in all>"


class Recorder:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request, response = bytearray(), bytearray()
        meta: dict[str, Any] = {}

        async def receive_and_keep() -> Any:
            message = await receive()
            if message["type"] == "http.request" and len(request) < 64_000:
                request.extend(message.get("body", b""))
            return message

        async def send_and_keep(message: Any) -> None:
            if message["type"] == "http.response.start":
                meta["status"] = message["status"]
                meta["headers"] = {k.decode(): v.decode() for k, v in message.get("headers", [])}
            elif message["type"] == "http.response.body" and len(response) < 64_000:
                response.extend(message.get("body", b""))
            await send(message)

        await self.app(scope, receive_and_keep, send_and_keep)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        record = {
            "t": time.time(),
            "method": scope["method"],
            "path": scope["path"],
            "query": scope.get("query_string", b"").decode(),
            "req_headers": {k: v for k, v in headers.items() if k in HEADERS},
            "req": _describe(bytes(request), headers.get("content-type", "")),
            "status": meta.get("status"),
            "resp_headers": meta.get("headers"),
            "resp": _describe(bytes(response), (meta.get("headers") or {}).get("content-type", "")),
        }
        with open(LOG, "a") as log:
            log.write(json.dumps(record) + "\n")


def app_factory() -> Recorder:
    return Recorder(run_app())
