"""One JSON log line per request, and Prometheus metrics.

Only method, route template, path, status, size and duration are logged: never headers,
query strings or bodies, which can carry credentials or signed tokens.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("opsml_server.access")

REQUESTS = Counter(
    "opsml_http_requests_total", "HTTP requests served", ["method", "route", "status"]
)
LATENCY = Histogram(
    "opsml_http_request_duration_seconds",
    "Time to serve a request (upload and download bodies included)",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60, 300),
)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, for ours and every library's logger (uvicorn, gunicorn,
    SQLAlchemy, Alembic).

    No traceback, and no exception text: a database error's text carries its SQL and the
    request's values as parameters (chained errors repeat them), a connection error can carry
    the URI. An exception is logged as its class, its cause's class and, for a database
    error, the SQLSTATE; ours (`OpsmlServerError`) add their message, written to be shown.
    """

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": _message(record).strip(),
        }
        payload.update(getattr(record, "fields", {}))
        if record.exc_info and record.exc_info[1] is not None:
            payload.update(_error_fields(record.exc_info[1]))
        return json.dumps(payload, default=str)


def _message(record: logging.LogRecord) -> str:
    # Exceptions passed as %-arguments ("Error while closing socket %s") become class names.
    args = record.args
    if isinstance(args, tuple) and any(isinstance(a, BaseException) for a in args):
        args = tuple(type(a).__name__ if isinstance(a, BaseException) else a for a in args)
    try:
        return str(record.msg) % args if args else str(record.msg)
    except (TypeError, ValueError):
        return str(record.msg)


def _error_fields(exc: BaseException) -> dict[str, Any]:
    from app.db.failures import sqlstate
    from app.errors import OpsmlServerError

    fields: dict[str, Any] = {"error": type(exc).__name__}
    cause = exc.__cause__ or exc.__context__
    if cause is not None:
        fields["error_cause"] = type(cause).__name__
    code = sqlstate(exc) or (sqlstate(cause) if cause is not None else None)
    if code is not None:
        fields["sqlstate"] = code
    if isinstance(exc, OpsmlServerError):
        fields["error_message"] = exc.message
    return fields


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Python's warnings print their source line to stderr; as records they are JSON too.
    logging.captureWarnings(True)
    # uvicorn's own access log would duplicate ours and prints query strings.
    logging.getLogger("uvicorn.access").disabled = True


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    return str(getattr(route, "path", "unmatched"))


class RequestObserver:
    """Pure ASGI middleware: bodies stream through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        sent = 0

        async def observe(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            LATENCY.labels(scope["method"], route).observe(elapsed)
            log.info(
                "request",
                extra={
                    "fields": {
                        "method": scope["method"],
                        "route": route,
                        "path": scope["path"][:512],
                        "status": status,
                        "bytes_sent": sent,
                        "duration_ms": round(elapsed * 1000, 2),
                    }
                },
            )


def metrics_text() -> bytes:
    """All workers' metrics under gunicorn (multiprocess mode), this process's otherwise."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest()
