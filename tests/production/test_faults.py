"""Faults under a live gunicorn: the database restarts, storage vanishes, a client hangs up.

The database fault uses the suite's throwaway PostgreSQL cluster (never the machine's main
one); the storage fault uses a moto S3 server on a port the test controls.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from app.http_errors import ERR_DATABASE_DOWN, ERR_DATABASE_SLOW
from app.storage.store import ERR_STORAGE_DOWN
from tests.production.conftest import MAIN_BIN, Launch, migrate
from tests.production.pgcluster import ThrowawayCluster
from tests.production.traffic import files_under, send_half_and_close
from tests.support.emulators import S3_KEY, S3_SECRET, ManagedProcess, s3_bucket_maker, s3_env
from tests.support.processes import free_port
from tests.support.storage_dirs import storage_dir

STORAGE_DOWN_PREFIX = ERR_STORAGE_DOWN.split("(")[0]


def _until(predicate, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"{what} within {timeout_s}s (last: {last!r})")


class Traffic:
    """Registry reads and version requests in a loop, recording every status seen."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seen: list[tuple[float, int, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while not self._stop.is_set():
                for method, path, body in (
                    ("POST", "/opsml/cards/list", {"registry_type": "data", "name": "fault"}),
                    (
                        "POST",
                        "/opsml/cards/version",
                        {
                            "name": "fault",
                            "repository": "ops",
                            "registry_type": "data",
                            "version_type": "patch",
                        },
                    ),
                ):
                    response = http.request(method, path, json=body)
                    self.seen.append((time.monotonic(), response.status_code, response.text))
                time.sleep(0.05)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)


def test_database_restart_gives_503_then_recovers_without_a_server_restart(
    launch: Launch, pg_cluster: ThrowawayCluster, pg_fault_url: str, tmp_path: Path
) -> None:
    migrate(MAIN_BIN, pg_fault_url)
    (tmp_path / "artifacts").mkdir()
    server = launch(
        {
            "OPSML_TRACKING_URI": pg_fault_url,
            "OPSML_STORAGE_URI": storage_dir(tmp_path / "artifacts"),
            "WEB_CONCURRENCY": "2",
        },
        ready_path="/readyz",
    )
    workers = server.wait_workers(2)
    http = httpx.Client(base_url=server.url, timeout=30)
    with Traffic(server.url) as traffic:
        _until(lambda: len(traffic.seen) > 10, 30, "traffic flowing")
        pg_cluster.stop("fast")
        stopped_at = time.monotonic()
        red = server.wait_until("/readyz", 503, 30).json()
        assert red["status"] == "unavailable"
        assert red["checks"]["database"].startswith("unreachable")
        assert red["checks"]["storage"] == "ok"
        down = http.post("/opsml/cards/list", json={"registry_type": "data"})
        assert (down.status_code, down.json()) == (503, {"detail": ERR_DATABASE_DOWN})
        assert http.get("/livez").status_code == 200  # liveness never follows a dependency
        _until(
            lambda: sum(1 for t, s, _ in traffic.seen if t > stopped_at and s == 503) >= 4,
            30,
            "503s during the outage",
        )
        pg_cluster.start()
        restarted_at = time.monotonic()
        server.wait_until("/readyz", 200, 30)
        _until(
            lambda: [s for t, s, _ in traffic.seen if t > restarted_at][-6:] == [200] * 6,
            30,
            "traffic succeeding again",
        )
    statuses = Counter(status for _, status, _ in traffic.seen)
    assert set(statuses) == {200, 503}, statuses  # never a 500, never a hang
    for _, status, text in traffic.seen:
        if status == 503:
            assert ERR_DATABASE_DOWN in text
    # Same workers throughout: recovery came from the pool, not from a restart.
    assert server.worker_pids() == workers
    assert http.post("/opsml/cards/list", json={"registry_type": "data"}).status_code == 200
    http.close()


def test_storage_outage_is_503_with_a_clear_message_and_readiness_follows(
    launch: Launch, tmp_path: Path
) -> None:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        **s3_env(endpoint, S3_KEY, S3_SECRET),
        "OPSML_STORAGE_URI": "s3://fault-bucket/root",
        "OPSML_TRACKING_URI": f"sqlite:///{tmp_path / 'opsml.db'}",
        "WEB_CONCURRENCY": "1",
        # One attempt per SDK call keeps the test short; the statuses are the same.
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_RETRY_MODE": "standard",
    }
    server = launch(env)  # storage is down from the start: the server still boots
    http = httpx.Client(base_url=server.url, timeout=60)
    path = "opsml-root:/OPSML_DATA_REGISTRY/ops/fault/v1.0.0/data.bin"

    def assert_storage_down() -> None:
        red = server.wait_until("/readyz", 503, 60).json()
        assert red["checks"]["database"] == "ok"
        assert red["checks"]["storage"].startswith(STORAGE_DOWN_PREFIX)
        for response in (
            http.get("/opsml/files/list", params={"path": path}),
            http.get("/opsml/files/exists", params={"path": path}),
            http.get("/opsml/files/download", params={"path": path}),
            http.post(
                "/opsml/files/upload",
                headers={"write_path": path},
                files={"file": ("data.bin", b"x" * 1024)},
            ),
        ):
            assert response.status_code == 503, (response.request.url, response.text)
            assert response.json()["detail"].startswith(STORAGE_DOWN_PREFIX)
            assert endpoint not in response.text and S3_SECRET not in response.text
        # The card registry does not depend on storage.
        assert http.post("/opsml/cards/list", json={"registry_type": "data"}).status_code == 200

    assert_storage_down()
    moto = ManagedProcess(
        "moto_server",
        [str(MAIN_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        tmp_path / "moto.log",
    )
    moto.start(f"{endpoint}/moto-api/")
    try:
        s3_bucket_maker(endpoint, S3_KEY, S3_SECRET)("fault-bucket")
        server.wait_until("/readyz", 200, 60)
        payload = os.urandom(256 * 1024)
        uploaded = http.post(
            "/opsml/files/upload",
            headers={"write_path": path},
            files={"file": ("data.bin", payload)},
        )
        assert uploaded.status_code == 200, uploaded.text
        assert http.get("/opsml/files/download", params={"path": path}).content == payload
    finally:
        moto.stop()
    assert_storage_down()
    http.close()


def test_upload_cut_off_by_the_client_leaves_nothing(launch: Launch, tmp_path: Path) -> None:
    storage = tmp_path / "artifacts"
    storage.mkdir()
    server = launch(
        {
            "OPSML_TRACKING_URI": f"sqlite:///{tmp_path / 'opsml.db'}",
            "OPSML_STORAGE_URI": str(storage),
            "WEB_CONCURRENCY": "2",
        }
    )
    write_path = "opsml-root:/OPSML_MODEL_REGISTRY/ops/cut/v1.0.0/model.bin"
    for _ in range(3):
        send_half_and_close(server.port, write_path, os.urandom(6 * 1024 * 1024))
    _until(
        lambda: files_under(storage) == [] and server.log_text().count("files/upload") >= 3,
        20,
        "partial uploads cleaned up",
    )
    time.sleep(1.0)  # nothing reappears once the workers are done with the dead sockets
    assert files_under(storage) == []
    with httpx.Client(base_url=server.url, timeout=30) as http:
        exists = http.get("/opsml/files/exists", params={"path": write_path})
        assert exists.json() == {"exists": False}
        listed = http.get("/opsml/files/list", params={"path": "opsml-root:/OPSML_MODEL_REGISTRY"})
        assert listed.json() == {"files": []}
        # The server is fine afterwards.
        ok = http.post(
            "/opsml/files/upload",
            headers={"write_path": write_path},
            files={"file": ("model.bin", b"whole")},
        )
        assert ok.status_code == 200
    assert [p.name for p in files_under(storage)] == ["model.bin"]
    assert "Traceback" not in server.log_text()


@pytest.mark.parametrize("backend", ["s3", "gcs"])
def test_downloads_abandoned_mid_stream_release_their_storage_connections(
    backend: str, launch: Launch, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # S3 and GCS downloads hold one streamed GET each. A client that hangs up must not leave
    # it open: S3's pool has 10 connections, so leaked GETs would stall every later request.
    emulator = request.getfixturevalue(_EMULATOR_FIXTURE[backend]).fresh()
    server = launch(
        {
            **emulator.env,
            "OPSML_TRACKING_URI": f"sqlite:///{tmp_path / 'opsml.db'}",
            "WEB_CONCURRENCY": "1",
        }
    )
    path = "opsml-root:/OPSML_MODEL_REGISTRY/ops/big/v1.0.0/model.bin"
    payload = os.urandom(24 * 1024 * 1024)
    with httpx.Client(base_url=server.url, timeout=60) as http:
        uploaded = http.post(
            "/opsml/files/upload", headers={"write_path": path}, files={"file": ("m", payload)}
        )
        assert uploaded.status_code == 200, uploaded.text
        request_line = f"GET /opsml/files/download?path={path} HTTP/1.1\r\nHost: x\r\n\r\n"
        for _ in range(12):
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as client:
                client.sendall(request_line.encode())
                client.recv(1024 * 1024)  # the headers and the first bytes, then hang up
        (worker,) = server.worker_pids()
        storage_port = int(emulator.endpoint.rsplit(":", 1)[1].split("/")[0])
        _until(
            lambda: _connections_to(worker, storage_port) <= 3,
            20,
            "abandoned GETs closed",
        )
        # And the worker still downloads at full length.
        assert http.get("/opsml/files/download", params={"path": path}).content == payload


_EMULATOR_FIXTURE = {"s3": "moto_s3", "gcs": "fake_gcs"}


def _connections_to(pid: int, port: int) -> int:
    connections = psutil.Process(pid).net_connections(kind="tcp")
    return sum(
        1 for c in connections if c.raddr and c.raddr.port == port and c.status == "ESTABLISHED"
    )


def test_a_frozen_database_gives_503s_in_bounded_time_and_keeps_connections(
    launch: Launch, pg_cluster: ThrowawayCluster, pg_fault_url: str, tmp_path: Path
) -> None:
    # SIGSTOP on the postmaster and every backend: sockets stay open and nothing answers,
    # as with a frozen VM or a network that drops packets. pg8000's socket timeout used to
    # be 5 s for every read and turned into 500s with reset connections.
    migrate(MAIN_BIN, pg_fault_url)
    statement_timeout_s = 2
    server = launch(
        {
            "OPSML_TRACKING_URI": pg_fault_url,
            "OPSML_STORAGE_URI": storage_dir(tmp_path / "artifacts"),
            "WEB_CONCURRENCY": "1",
            "OPSML_DB_STATEMENT_TIMEOUT": str(statement_timeout_s),
            "OPSML_DB_CONNECT_TIMEOUT": "2",
            "OPSML_POOL_SIZE": "2",
            "OPSML_MAX_OVERFLOW": "0",
            "OPSML_POOL_TIMEOUT": "3",
        },
        ready_path="/readyz",
    )
    body = {"registry_type": "data", "name": "fault"}
    # Keep-alive clients, each with pooled connections open before the freeze.
    clients = [httpx.Client(base_url=server.url, timeout=60) for _ in range(4)]
    for http in clients:
        assert http.post("/opsml/cards/list", json=body).status_code == 200
    bound_s = statement_timeout_s + 5 + 3 + 5  # read timeout, pool wait, slack
    results: list[tuple[int, str, float]] = []

    def call(http: httpx.Client) -> None:
        for path, payload in (
            ("/opsml/cards/list", body),
            ("/opsml/cards/version", {**body, "repository": "ops", "version_type": "patch"}),
        ):
            started = time.monotonic()
            response = http.post(path, json=payload)
            results.append((response.status_code, response.text, time.monotonic() - started))

    pg_cluster.freeze()
    try:
        threads = [threading.Thread(target=call, args=(http,)) for http in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        ready = httpx.get(f"{server.url}/readyz", timeout=60)
    finally:
        pg_cluster.thaw()
    assert len(results) == 2 * len(clients), results  # every request answered, none reset
    for status, text, elapsed in results:
        assert status == 503, text
        assert text in (
            f'{{"detail":"{ERR_DATABASE_SLOW}"}}',
            f'{{"detail":"{ERR_DATABASE_DOWN}"}}',
        )
        assert elapsed < bound_s
    assert ready.status_code == 503
    server.wait_until("/readyz", 200, 30)
    # The same keep-alive connections carry on once the database is back.
    for http in clients:
        _until(
            lambda http=http: http.post("/opsml/cards/list", json=body).status_code == 200,
            30,
            "reads succeeding again",
        )
        http.close()
    log = server.log_text()
    assert "Traceback" not in log and "Exception in ASGI application" not in log


def test_every_log_line_is_one_json_object_without_values_or_secrets(
    launch: Launch, pg_cluster: ThrowawayCluster, pg_fault_url: str, tmp_path: Path
) -> None:
    from sqlalchemy.engine import make_url

    from tests.production.failing_app import SECRET_VALUE, UNHANDLED_ROUTE

    password = "pw-7c1x-never-logged"  # the throwaway cluster trusts any password
    url = make_url(pg_fault_url).set(password=password).render_as_string(hide_password=False)
    migrate(MAIN_BIN, url)
    server = launch(
        {
            "OPSML_TRACKING_URI": url,
            "OPSML_STORAGE_URI": storage_dir(tmp_path / "artifacts"),
            "WEB_CONCURRENCY": "1",
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        },
        ready_path="/readyz",
        app_spec="tests.production.failing_app:run_app()",
    )
    with httpx.Client(base_url=server.url, timeout=30) as http:
        # Starlette's unhandled-exception path, a chained database error inside. uvicorn
        # closes the connection after an unhandled error, so a client of its own; the 500 may
        # or may not reach it first.
        with contextlib.suppress(httpx.TransportError):
            assert httpx.get(server.url + UNHANDLED_ROUTE, timeout=30).status_code == 500
        # Handled database errors whose statements carry request values.
        too_long = {
            "registry_type": "data",
            "card": {"uid": "u" * 80, "name": SECRET_VALUE, "repository": "r", "version": "1.0.0"},
        }
        assert http.post("/opsml/cards/create", json=too_long).status_code == 400
        # The database going away under a worker: connection errors and pool resets.
        pg_cluster.stop("immediate")
        assert http.post("/opsml/cards/list", json={"registry_type": "data"}).status_code == 503
        pg_cluster.start()
        server.wait_until("/readyz", 200, 30)
    server.stop()  # gunicorn's own shutdown lines too
    lines = server.log_text().splitlines()
    assert len(lines) > 10
    records = []
    for line in lines:
        record = json.loads(line)  # every line, gunicorn's and uvicorn's included
        assert isinstance(record, dict), line
        records.append(record)
    text = server.log_text()
    assert SECRET_VALUE not in text and password not in text and "SELECT" not in text
    [unhandled] = [r for r in records if r["msg"] == "Exception in ASGI application"]
    assert (unhandled["error"], unhandled["error_cause"]) == ("RuntimeError", "ProgrammingError")
    assert unhandled["sqlstate"] == "22P02"
    assert any(r["logger"] == "gunicorn.error" and "Booting worker" in r["msg"] for r in records)
