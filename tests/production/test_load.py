"""gunicorn with several workers on PostgreSQL: concurrency, graceful shutdown, long transfers.

Each test runs the Dockerfile's CMD (main venv) on a fresh database of the machine's Postgres
and a local storage root, and asserts on what clients see and on what is left in storage.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import fresh_postgres_database
from tests.production.conftest import MAIN_BIN, Launch, migrate
from tests.production.traffic import files_under, slow_body, upload_headers

MiB = 1024 * 1024
ROOT = "opsml-root:/OPSML_MODEL_REGISTRY/load/model/v1.0.0"


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_postgres_database("opsml_prod") as url:
        migrate(MAIN_BIN, url)
        yield url


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    root = tmp_path / "artifacts"
    root.mkdir()
    return root


def test_32_concurrent_registrations_get_32_distinct_versions(
    launch: Launch, pg_url: str, storage: Path
) -> None:
    server = launch(
        {"OPSML_TRACKING_URI": pg_url, "OPSML_STORAGE_URI": str(storage), "WEB_CONCURRENCY": "4"},
        ready_path="/readyz",
    )
    assert len(server.wait_workers(4)) == 4
    start = threading.Barrier(32)

    def register(i: int) -> tuple[int, int, str]:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            start.wait()
            asked = http.post(
                "/opsml/cards/version",
                json={
                    "name": "contended",
                    "repository": "load",
                    "registry_type": "model",
                    "version_type": "minor",
                },
            )
            if asked.status_code != 200:
                return asked.status_code, 0, asked.text
            version = asked.json()["version"]
            card = {
                "uid": f"{i:032x}",
                "name": "contended",
                "repository": "load",
                "version": version,
                "contact": "ops",
                "timestamp": i,
                "tags": {},
            }
            created = http.post(
                "/opsml/cards/create", json={"card": card, "registry_type": "model"}
            )
            return asked.status_code, created.status_code, version

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(register, range(32)))
    errors = [r for r in results if r[:2] != (200, 200)]
    assert errors == []
    versions = [r[2] for r in results]
    assert len(set(versions)) == 32, sorted(versions)
    listed = httpx.post(
        f"{server.url}/opsml/cards/list",
        json={"name": "contended", "repository": "load", "registry_type": "model", "limit": 100},
        timeout=30,
    ).json()["cards"]
    assert sorted(c["version"] for c in listed) == sorted(versions)
    assert "Traceback" not in server.log_text()


def _upload_during_sigterm(server, payload: bytes, pause_s: float) -> httpx.Response | Exception:
    sent_first = threading.Event()
    outcome: list[httpx.Response | Exception] = []

    def client() -> None:
        body = slow_body(payload, MiB, pause_s, on_chunk=lambda i: sent_first.set())
        try:
            with httpx.Client(timeout=60) as http:
                outcome.append(
                    http.post(
                        f"{server.url}/opsml/files/upload",
                        content=body,
                        headers=upload_headers(f"{ROOT}/model.bin", len(payload)),
                    )
                )
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=client)
    thread.start()
    assert sent_first.wait(30)
    server.sigterm()
    thread.join(120)
    assert not thread.is_alive()
    return outcome[0]


def test_sigterm_lets_an_inflight_upload_finish(launch: Launch, pg_url: str, storage: Path) -> None:
    server = launch(
        {
            "OPSML_TRACKING_URI": pg_url,
            "OPSML_STORAGE_URI": str(storage),
            "WEB_CONCURRENCY": "2",
            "GUNICORN_GRACEFUL_TIMEOUT": "30",
        }
    )
    payload = os.urandom(8 * MiB)
    response = _upload_during_sigterm(server, payload, pause_s=0.3)
    assert isinstance(response, httpx.Response), repr(response)
    assert response.status_code == 200, response.text
    assert server.wait_exit(60) == 0
    stored = files_under(storage)
    assert [p.relative_to(storage).as_posix() for p in stored] == [
        "OPSML_MODEL_REGISTRY/load/model/v1.0.0/model.bin"
    ]
    assert stored[0].read_bytes() == payload


def test_sigterm_past_the_grace_period_leaves_nothing_half_written(
    launch: Launch, pg_url: str, storage: Path
) -> None:
    server = launch(
        {
            "OPSML_TRACKING_URI": pg_url,
            "OPSML_STORAGE_URI": str(storage),
            "WEB_CONCURRENCY": "1",
            "GUNICORN_GRACEFUL_TIMEOUT": "3",
        }
    )
    # 12 s of dribbling: far longer than the 3 s the workers get after SIGTERM.
    result = _upload_during_sigterm(server, os.urandom(12 * MiB), pause_s=1.0)
    if isinstance(result, httpx.Response):
        assert result.status_code >= 400  # failed cleanly, never a false 200
    assert server.wait_exit(60) in (0, 1)
    assert files_under(storage) == []
    assert "timeout graceful shutdown exceeded" in server.log_text()  # cancelled, not killed


def test_large_transfers_outlive_the_worker_timeout(
    launch: Launch, pg_url: str, storage: Path
) -> None:
    server = launch(
        {
            "OPSML_TRACKING_URI": pg_url,
            "OPSML_STORAGE_URI": str(storage),
            "WEB_CONCURRENCY": "2",
            "GUNICORN_TIMEOUT": "2",
        }
    )
    workers = server.wait_workers(2)
    payload = os.urandom(48 * MiB)
    started = time.monotonic()
    with httpx.Client(timeout=60) as http:
        response = http.post(
            f"{server.url}/opsml/files/upload",
            content=slow_body(payload, 4 * MiB, 0.45),
            headers=upload_headers(f"{ROOT}/big.bin", len(payload)),
        )
        assert response.status_code == 200, response.text
        assert time.monotonic() - started > 4  # twice the worker timeout
        received = bytearray()
        started = time.monotonic()
        with http.stream(
            "GET", f"{server.url}/opsml/files/download", params={"path": f"{ROOT}/big.bin"}
        ) as download:
            assert download.status_code == 200
            for chunk in download.iter_bytes(4 * MiB):
                received += chunk
                time.sleep(0.4)
        assert time.monotonic() - started > 4
    assert bytes(received) == payload
    assert server.worker_pids() == workers
    assert "WORKER TIMEOUT" not in server.log_text()
