"""Slow and greedy clients against the production command (gunicorn, one uvicorn worker).

A head that never ends and a body that stops arriving are closed after their configured
time, with a 408 saying which limit; a body that keeps coming is never cut; a thousand
Slowloris connections do not slow down a normal client; JSON bodies far over the bound are
refused without the worker's memory growing with them.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from app.http_protocol import ERR_BODY_IDLE, ERR_HEADER_TIMEOUT
from app.request_limits import ERR_BODY_TOO_LARGE
from tests.production.conftest import Launch
from tests.production.server import Gunicorn
from tests.production.traffic import (
    files_under,
    multipart_parts,
    send_then_wait,
    slow_body,
    trickle_head,
    upload_headers,
)
from tests.support.storage_dirs import storage_dir

HEADER_TIMEOUT_S = 3.0
IDLE_TIMEOUT_S = 2.0
MAX_JSON_BYTES = 1024 * 1024
# Timers fire on the worker's loop; a loaded 2-core machine adds some delay.
SLACK_S = 2.0
R = "opsml-root:/OPSML_DATA_REGISTRY/slow/clients/v1.0.0"


@pytest.fixture
def server(launch: Launch, tmp_path: Path) -> Gunicorn:
    return launch(
        {
            "OPSML_TRACKING_URI": f"sqlite:///{tmp_path / 'opsml.db'}",
            "OPSML_STORAGE_URI": storage_dir(tmp_path / "artifacts"),
            "WEB_CONCURRENCY": "1",
            "OPSML_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
            "OPSML_BODY_IDLE_TIMEOUT_S": str(IDLE_TIMEOUT_S),
            "OPSML_MAX_JSON_BYTES": str(MAX_JSON_BYTES),
        }
    )


def _answer(raw: bytes) -> tuple[int, str]:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 "), raw[:200]
    return int(head.split(b" ", 2)[1]), json.loads(body)["detail"]


def test_a_head_that_never_ends_is_408_after_the_header_timeout(server: Gunicorn) -> None:
    elapsed, raw = send_then_wait(
        server.port, b"GET /livez HTTP/1.1\r\nHost: x\r\n", drip=b"X-Slow: " + b"z" * 100
    )
    assert _answer(raw) == (408, ERR_HEADER_TIMEOUT.format(timeout=HEADER_TIMEOUT_S))
    assert HEADER_TIMEOUT_S - 0.5 <= elapsed <= HEADER_TIMEOUT_S + SLACK_S


def test_a_silent_connection_is_closed_after_the_header_timeout(server: Gunicorn) -> None:
    elapsed, raw = send_then_wait(server.port, b"")
    assert raw == b""  # nobody asked anything, so nothing is said
    assert HEADER_TIMEOUT_S - 0.5 <= elapsed <= HEADER_TIMEOUT_S + SLACK_S


def test_a_json_body_that_stops_arriving_is_408(server: Gunicorn) -> None:
    head = (
        b"PUT /opsml/metrics HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n"
    )
    elapsed, raw = send_then_wait(server.port, head, drip=b'{"metric": [')
    assert _answer(raw) == (408, ERR_BODY_IDLE.format(timeout=IDLE_TIMEOUT_S))
    # The drip itself took 6 s (one byte per 0.5 s): idle is counted from the last byte.
    assert 6 + IDLE_TIMEOUT_S - 0.5 <= elapsed <= 6 + IDLE_TIMEOUT_S + SLACK_S


def test_an_upload_that_stops_arriving_is_408_and_stores_nothing(
    server: Gunicorn, tmp_path: Path
) -> None:
    head, _ = multipart_parts()
    headers = upload_headers(f"{R}/stalled.bin", 1_000_000)
    request = b"POST /opsml/files/upload HTTP/1.1\r\nHost: x\r\n" + b"".join(
        f"{name}: {value}\r\n".encode() for name, value in headers.items()
    )
    elapsed, raw = send_then_wait(server.port, request + b"\r\n" + head + b"d" * 300_000)
    assert _answer(raw) == (408, ERR_BODY_IDLE.format(timeout=IDLE_TIMEOUT_S))
    assert IDLE_TIMEOUT_S - 0.5 <= elapsed <= IDLE_TIMEOUT_S + SLACK_S
    time.sleep(0.5)  # the aborted write is removed right after the disconnect
    assert files_under(tmp_path / "artifacts") == []


def test_an_upload_that_keeps_sending_outlives_the_idle_timeout(
    server: Gunicorn, tmp_path: Path
) -> None:
    data = b"s" * (16 * 64 * 1024)
    started = time.monotonic()
    response = httpx.post(
        f"{server.url}/opsml/files/upload",
        headers=upload_headers(f"{R}/steady.bin", len(data)),
        content=slow_body(data, chunk=64 * 1024, pause_s=IDLE_TIMEOUT_S / 2),
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert time.monotonic() - started > 3 * IDLE_TIMEOUT_S  # far longer than the idle limit
    stored = tmp_path / "artifacts/OPSML_DATA_REGISTRY/slow/clients/v1.0.0/steady.bin"
    assert stored.read_bytes() == data


def _normal_latencies(url: str, stop: threading.Event, out: list[float]) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        while not stop.is_set():
            started = time.perf_counter()
            response = client.post("/opsml/cards/list", json={"registry_type": "data"})
            assert response.status_code == 200, response.text
            out.append(time.perf_counter() - started)
            time.sleep(0.1)


def test_a_thousand_slowloris_connections_do_not_hold_up_a_normal_client(
    server: Gunicorn,
) -> None:
    latencies: list[float] = []
    stop = threading.Event()

    async def attack() -> list[float | None]:
        tricklers = [
            asyncio.ensure_future(trickle_head(server.port, 0.5, HEADER_TIMEOUT_S + 5))
            for _ in range(1000)
        ]
        await asyncio.sleep(1.0)  # all connected and trickling
        normal = threading.Thread(target=_normal_latencies, args=(server.url, stop, latencies))
        normal.start()
        await asyncio.sleep(HEADER_TIMEOUT_S - 1.5)
        stop.set()
        await asyncio.to_thread(normal.join)
        return await asyncio.gather(*tricklers)

    closed_after = asyncio.run(attack())
    assert len(latencies) >= 5 and max(latencies) < 1.0, latencies
    still_open = [t for t in closed_after if t is None]
    assert still_open == [], f"{len(still_open)} of 1000 slow heads were never closed"
    assert max(t for t in closed_after if t is not None) <= HEADER_TIMEOUT_S + 1.0 + SLACK_S


def _peak_rss(pid: int, stop: threading.Event, peak: list[int]) -> None:
    process = psutil.Process(pid)
    while not stop.is_set():
        peak[0] = max(peak[0], process.memory_info().rss)
        time.sleep(0.01)


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_eight_concurrent_40_mb_json_bodies_are_413_and_memory_stays_bounded(
    server: Gunicorn, declared: bool
) -> None:
    (worker,) = server.wait_workers(1)
    size = 40 * 1024 * 1024
    chunk = b" " * (1024 * 1024)

    def body() -> Iterator[bytes]:
        for _ in range(size // len(chunk)):
            yield chunk

    def send(client: httpx.Client) -> httpx.Response:
        headers = {"content-type": "application/json"}
        if declared:
            headers["content-length"] = str(size)
        return client.put("/opsml/metrics", content=body(), headers=headers)

    baseline = psutil.Process(worker).memory_info().rss
    peak = [baseline]
    stop = threading.Event()
    sampler = threading.Thread(target=_peak_rss, args=(worker, stop, peak))
    sampler.start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            results: list[httpx.Response] = []
            threads = [
                threading.Thread(target=lambda: results.append(send(client))) for _ in range(8)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        stop.set()
        sampler.join()
    assert [r.status_code for r in results] == [413] * 8
    assert results[0].json()["detail"] == ERR_BODY_TOO_LARGE.format(limit=MAX_JSON_BYTES)
    growth_mb = (peak[0] - baseline) / 1024**2
    assert growth_mb < 40, f"worker grew by {growth_mb:.0f} MB for 8 refused bodies"
