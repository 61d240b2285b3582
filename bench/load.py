"""Registry load on Postgres with several gunicorn workers, ours beside the reference server.

Seeds 100k DataCards (1,000 names x 100 versions) straight into a fresh database, then for
each server measures: `cards/list` latency (p50/p95, one client), read throughput (wrk, a
fixed time) and 32 concurrent registrations of one card name.
"""

from __future__ import annotations

import http.client
import json
import random
import re
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import create_engine, insert, text

from app.db.engine import build_engine
from app.db.migrate import run_migrations
from app.db.tables import DataCardRecord
from app.settings import Settings
from bench.harness import VENV_BIN, RunningServer, reference_server, server, tree_cpu_seconds
from tests.support.postgres import fresh_postgres_database

NAMES = 1_000
VERSIONS = 100
REPOSITORIES = 10
WORKERS = 2
CONNECTIONS = 8
THROUGHPUT_SECONDS = int(__import__("os").environ.get("BENCH_SECONDS", "10"))
LATENCY_SAMPLES = 300
REGISTRATIONS = 32


@dataclass
class LoadResult:
    server: str
    list_p50_ms: float
    list_p95_ms: float
    uid_p50_ms: float
    reads_per_s: float
    cpu_ms_per_read: float
    distinct_versions: int
    registration_errors: int


def _card_name(i: int) -> tuple[str, str]:
    return f"bench-card-{i}", f"bench-repo-{i % REPOSITORIES}"


def seed(url: str) -> list[str]:
    """100k rows in batches; returns a sample of uids for by-uid reads."""
    settings = Settings(OPSML_TRACKING_URI=url)
    engine = build_engine(settings)
    run_migrations(engine)
    engine.dispose()
    raw = create_engine(settings.database_url)
    uids: list[str] = []
    now = time.time_ns() // 1000
    with raw.begin() as connection:
        batch: list[dict[str, Any]] = []
        for i in range(NAMES):
            name, repository = _card_name(i)
            for v in range(VERSIONS):
                uid = uuid.uuid4().hex
                if v == 0:
                    uids.append(uid)
                batch.append(
                    {
                        "uid": uid,
                        "date": "2026-11-28",
                        "timestamp": now + v,
                        "app_env": "development",
                        "name": name,
                        "repository": repository,
                        "version": f"{1 + v // 50}.{v % 50}.0",
                        "contact": "bench",
                        "tags": {},
                        "data_type": "pandas",
                    }
                )
            if len(batch) >= 10_000:
                connection.execute(insert(DataCardRecord), batch)
                batch.clear()
        if batch:
            connection.execute(insert(DataCardRecord), batch)
    # Planner statistics and a visibility map, as a database in service has them: without
    # them both servers' plans depend on when autovacuum happens to run during the bench.
    with raw.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))
    raw.dispose()
    return uids


def _post(conn: http.client.HTTPConnection, path: str, body: dict[str, Any]) -> int:
    conn.request("POST", path, json.dumps(body), {"content-type": "application/json"})
    response = conn.getresponse()
    response.read()
    return response.status


def _list_by_name(i: int) -> dict[str, Any]:
    name, repository = _card_name(i)
    return {"registry_type": "data", "name": name, "repository": repository, "limit": 1}


def _latencies(base: str, bodies: list[dict[str, Any]]) -> list[float]:
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    took = []
    for body in bodies:
        started = time.perf_counter()
        status = _post(conn, "/opsml/cards/list", body)
        took.append((time.perf_counter() - started) * 1000)
        if status != 200:
            raise RuntimeError(f"cards/list answered {status}")
    conn.close()
    return took


# Every RECONNECT_EVERY-th request asks the server to close its connection. gunicorn's
# workers share one listening socket and the first to wake accepts every pending
# connection, so wrk's few keep-alive connections can all land on one worker and leave the
# other idle for the whole run (seen: the same server measured 140 and 250 req/s).
# Reconnecting spreads the connections over the workers, as many clients would.
RECONNECT_EVERY = 20
_WRK_SCRIPT = """
wrk.method = "POST"
local sent = 0
request = function()
  sent = sent + 1
  local i = math.random(0, %(names)d - 1)
  local body = string.format(
    '{"registry_type":"data","name":"bench-card-%%d","repository":"bench-repo-%%d","limit":1}',
    i, i %% %(repositories)d)
  local headers = {["Content-Type"] = "application/json"}
  if sent %% %(reconnect)d == 0 then headers["Connection"] = "close" end
  return wrk.format(nil, "/opsml/cards/list", headers, body)
end
"""


def _throughput(base: str) -> float:
    """Requests per second under wrk (C, so the load generator takes little of the 2 cores
    the servers and Postgres share); any non-2xx answer fails the benchmark."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(
            _WRK_SCRIPT
            % {"names": NAMES, "repositories": REPOSITORIES, "reconnect": RECONNECT_EVERY}
        )
        script.flush()
        out = subprocess.run(
            ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{THROUGHPUT_SECONDS}s", "-s", script.name, base],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"errors under load:\n{out}")
    return float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))  # type: ignore[union-attr]


def _register(base: str, name: str) -> str | None:
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        conn.request(
            "POST",
            "/opsml/cards/version",
            json.dumps(
                {
                    "name": name,
                    "repository": "bench-race",
                    "registry_type": "data",
                    "version_type": "minor",
                    "version": None,
                }
            ),
            {"content-type": "application/json"},
        )
        response = conn.getresponse()
        answer = json.loads(response.read())
        if response.status != 200:
            return None
        version = str(answer["version"])
        status = _post(
            conn,
            "/opsml/cards/create",
            {
                "registry_type": "data",
                "card": {
                    "uid": uuid.uuid4().hex,
                    "name": name,
                    "repository": "bench-race",
                    "version": version,
                    "contact": "bench",
                    "timestamp": time.time_ns() // 1000,
                    "tags": {},
                },
            },
        )
        return version if status == 200 else None
    finally:
        conn.close()


def measure(label: str, srv: RunningServer, uids: list[str]) -> LoadResult:
    base = srv.url
    rng = random.Random(7)
    _latencies(base, [_list_by_name(rng.randrange(NAMES)) for _ in range(30)])  # warm up
    by_name = _latencies(
        base, [_list_by_name(rng.randrange(NAMES)) for _ in range(LATENCY_SAMPLES)]
    )
    by_uid = _latencies(
        base,
        [
            {"registry_type": "data", "uid": rng.choice(uids), "limit": 1}
            for _ in range(LATENCY_SAMPLES)
        ],
    )
    cpu_before = tree_cpu_seconds(srv.pid)
    reads_per_s = _throughput(base)
    # Server CPU per read does not depend on how the load generator's connections happen to
    # spread over the workers, so it compares the two servers even on a noisy machine.
    cpu_ms_per_read = (
        (tree_cpu_seconds(srv.pid) - cpu_before) * 1000 / (reads_per_s * THROUGHPUT_SECONDS)
    )
    name = f"race-{label}-{uuid.uuid4().hex[:6]}"
    with ThreadPoolExecutor(max_workers=REGISTRATIONS) as threads:
        versions = list(threads.map(lambda _: _register(base, name), range(REGISTRATIONS)))
    good = [v for v in versions if v is not None]
    return LoadResult(
        server=label,
        list_p50_ms=statistics.median(by_name),
        list_p95_ms=statistics.quantiles(by_name, n=20)[18],
        uid_p50_ms=statistics.median(by_uid),
        reads_per_s=reads_per_s,
        cpu_ms_per_read=cpu_ms_per_read,
        distinct_versions=len(set(good)),
        registration_errors=REGISTRATIONS - len(good),
    )


@contextmanager
def _ours(url: str, storage: Path) -> Iterator[RunningServer]:
    command = [
        str(VENV_BIN / "gunicorn"),
        "-k",
        "uvicorn_worker.UvicornWorker",
        "--config=python:app.gunicorn_conf",
        "--bind=127.0.0.1:{port}",
        "app.main:run_app(login=False)",
    ]
    env = {
        "OPSML_TRACKING_URI": url,
        "OPSML_STORAGE_URI": str(storage),
        "WEB_CONCURRENCY": str(WORKERS),
    }
    storage.mkdir(exist_ok=True)  # a configured local root must exist
    with server(env, command, log_path=storage.parent / "ours.log") as srv:
        yield srv


@contextmanager
def _reference(url: str, storage: Path) -> Iterator[RunningServer]:
    env = {
        "OPSML_TRACKING_URI": url.replace("postgresql://", "postgresql+pg8000://"),
        "OPSML_STORAGE_URI": str(storage),
    }
    with reference_server(env, WORKERS, log_path=storage.parent / "reference.log") as srv:
        yield srv


def run(with_reference: bool = True) -> list[LoadResult]:
    results = []
    with fresh_postgres_database("opsml_bench") as url, tempfile.TemporaryDirectory() as tmp:
        uids = seed(url)
        with _ours(url, Path(tmp) / "storage-ours") as srv:
            results.append(measure("opsml-server", srv, uids))
        if with_reference:
            with _reference(url, Path(tmp) / "storage-reference") as srv:
                results.append(measure("reference 2.2.4", srv, uids))
    return results
