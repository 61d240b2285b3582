"""A worker SIGKILLed mid-upload leaves a partial file; a restart sweeps it, never a live one."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import psutil

from tests.production.conftest import Launch
from tests.production.traffic import start_upload

MiB = 1024 * 1024
HOUR = 3600.0
SWEEP_DONE = "partial upload sweep done"


def _until(predicate: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout_s}s")


def _partial_in(folder: Path, min_size: int) -> Path | None:
    found = [p for p in folder.glob(".*.upload-*") if p.stat().st_size >= min_size]
    return found[0] if found else None


def _holder(workers: set[int], path: Path) -> int:
    for pid in workers:
        if any(f.path == str(path) for f in psutil.Process(pid).open_files()):
            return pid
    raise AssertionError(f"no worker holds {path}")


def _sweeps(log: str) -> list[dict[str, Any]]:
    return [
        record
        for line in log.splitlines()
        if line.startswith("{") and SWEEP_DONE in line
        for record in [json.loads(line)]
    ]


def _backdate(path: Path) -> None:
    past = time.time() - HOUR
    os.utime(path, (past, past))


def test_a_killed_workers_partial_upload_is_swept_and_a_live_one_kept(
    launch: Launch, tmp_path: Path
) -> None:
    storage = tmp_path / "artifacts"
    storage.mkdir()
    server = launch(
        {
            "OPSML_TRACKING_URI": f"sqlite:///{tmp_path / 'opsml.db'}",
            "OPSML_STORAGE_URI": str(storage),
            "WEB_CONCURRENCY": "2",
        }
    )
    workers = server.wait_workers(2)
    _until(lambda: len(_sweeps(server.log_text())) >= 2, 30, "both workers swept at start")

    # 1. An upload in flight, whose file looks an hour old: a worker starting meanwhile keeps it.
    live_folder = storage / "OPSML_MODEL_REGISTRY" / "ops" / "live" / "v1.0.0"
    payload = os.urandom(8 * MiB)
    live, rest = start_upload(
        server.port, "opsml-root:/OPSML_MODEL_REGISTRY/ops/live/v1.0.0/model.bin", payload, 4 * MiB
    )
    live_tmp = _until(lambda: _partial_in(live_folder, 2 * MiB), 30, "the live upload writing")
    _backdate(live_tmp)
    uploader = _holder(workers, live_tmp)
    os.kill((workers - {uploader}).pop(), signal.SIGKILL)
    _until(lambda: len(_sweeps(server.log_text())) >= 3, 30, "the new worker's sweep")
    assert _sweeps(server.log_text())[-1]["in_flight"] == 1
    assert live_tmp.exists()
    live.sendall(rest)
    answer = b""
    while b"storage_uri" not in answer:
        chunk = live.recv(65536)
        assert chunk, answer
        answer += chunk
    live.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert (live_folder / "model.bin").read_bytes() == payload

    # 2. A worker killed mid-upload leaves its partial file and the folders it made.
    dead_folder = storage / "OPSML_DATA_REGISTRY" / "ops" / "dead" / "v1.0.0"
    dead, _ = start_upload(
        server.port, "opsml-root:/OPSML_DATA_REGISTRY/ops/dead/v1.0.0/data.bin", payload, 4 * MiB
    )
    dead_tmp = _until(lambda: _partial_in(dead_folder, 2 * MiB), 30, "the upload writing")
    os.kill(_holder(server.worker_pids(), dead_tmp), signal.SIGKILL)
    dead.close()
    assert dead_tmp.exists()  # the killed worker could not clean up
    # An hour later (backdated), the next start of the server's workers removes it.
    _backdate(dead_tmp)
    sweeps_before = len(_sweeps(server.log_text()))
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGHUP)  # gunicorn restarts its workers
    _until(
        lambda: len(_sweeps(server.log_text())) >= sweeps_before + 2,
        30,
        "the restarted workers' sweeps",
    )
    _until(lambda: not (storage / "OPSML_DATA_REGISTRY").exists(), 10, "the leftover removed")
    assert (live_folder / "model.bin").read_bytes() == payload
    assert "Traceback" not in server.log_text()
