"""gunicorn settings for production: `--config=python:app.gunicorn_conf` (or the file path).

Every knob has an environment variable so the image and the chart can tune it without a
rebuild. The worker class is passed on the command line (`-k uvicorn_worker.UvicornWorker`).
"""

from __future__ import annotations

import gc
import os
import secrets
import tempfile
from typing import Any

bind = f"0.0.0.0:{os.environ.get('PORT', '3000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "uvicorn_worker.UvicornWorker"
# Uvicorn workers heartbeat from their event loop, which artifact streaming never blocks, so
# this only has to cover a stuck worker, not a slow upload.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "300"))
# In-flight uploads and downloads get this long to finish on SIGTERM before workers are killed.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "120"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Our middleware writes one JSON line per request; gunicorn's access log would duplicate it.
accesslog = None
# gunicorn >= 25.1 opens a control socket under $HOME by default: servers sharing a HOME
# collide on it, and a read-only root filesystem (our chart) cannot create it. Unused here.
control_socket_disable = True
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# gunicorn's own log, and uvicorn's (uvicorn-worker hands it gunicorn's handlers), as the same
# JSON lines as ours: without this, an unhandled error printed a multi-line traceback that
# quoted the failing SQL statement and its parameters.
logconfig_dict: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "app.observability.JsonFormatter"}},
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stdout",
        }
    },
    "root": {"level": "INFO", "handlers": ["stdout"]},
    "loggers": {
        "gunicorn.error": {"level": loglevel.upper(), "handlers": ["stdout"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False},
    },
}
# Workers share the Prometheus multiprocess directory so /metrics sums all of them.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="opsml-prometheus-")

# Local-storage signed URLs must verify on whichever worker the client reaches next: without
# OPSML_SIGNING_KEY each worker drew its own key and half of all pre-signed downloads
# (opsml-cli 0.7's download-model) were refused. One key drawn here, in the master, is
# inherited by every worker. Several replicas still need OPSML_SIGNING_KEY set.
if not os.environ.get("OPSML_SIGNING_KEY"):
    os.environ["OPSML_SIGNING_KEY"] = secrets.token_urlsafe(32)


def child_exit(_server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def post_fork(_server: Any, _worker: Any) -> None:
    # The worker imports and builds the app next: no garbage collection until the app's
    # lifespan turns it back on (see app.cli).
    gc.disable()


def post_worker_init(worker: Any) -> None:
    # uvicorn-worker leaves uvicorn's own graceful timeout unset, so on SIGTERM a worker waits
    # for in-flight requests until gunicorn SIGKILLs it after `graceful_timeout`: an upload
    # still streaming then dies mid-write and leaves its temporary file behind. Let uvicorn
    # cancel such requests a little earlier instead; they abort cleanly (nothing stored).
    config = getattr(worker, "config", None)
    if config is not None and hasattr(config, "timeout_graceful_shutdown"):
        config.timeout_graceful_shutdown = graceful_timeout - min(5.0, graceful_timeout / 2)
    if config is not None:
        _limit_requests(config)


def _limit_requests(config: Any) -> None:
    # The worker has built the app (settings valid) but its server has not loaded the config
    # yet: uvicorn's `http=` option accepts a protocol class, our httptools one with limits.
    from app.http_protocol import HttpLimits, protocol_class
    from app.settings import load_settings

    limits = HttpLimits.from_settings(load_settings())
    config.h11_max_incomplete_event_size = limits.max_header_bytes
    if config.http in ("auto", "httptools"):  # UvicornH11Worker keeps its h11 parser
        config.http = protocol_class(limits)
