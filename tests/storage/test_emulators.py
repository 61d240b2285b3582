"""The emulator plugin itself: mode selection and process-group shutdown."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.support import emulators
from tests.support.emulators import EmulatorError, ManagedProcess, StorageEmulator, use_containers


def test_processes_are_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPSML_TEST_CONTAINERS", raising=False)
    assert use_containers() is False
    monkeypatch.setenv("OPSML_TEST_CONTAINERS", "0")
    assert use_containers() is False


def test_containers_requested_without_an_engine_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPSML_TEST_CONTAINERS", "1")
    # Point the Docker client at a socket that cannot exist, whatever this machine has.
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(EmulatorError, match="no Docker engine is reachable"):
        use_containers()


def test_stop_ends_the_whole_process_group(tmp_path: Path) -> None:
    # A parent that forks a grandchild, like npx or a shell wrapper would.
    script = (
        "import subprocess, sys, http.server, socketserver\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        f"http.server.HTTPServer(('127.0.0.1', {(port := emulators.free_port())}),"
        " http.server.SimpleHTTPRequestHandler).serve_forever()\n"
    )
    process = ManagedProcess("group-test", [sys.executable, "-c", script], tmp_path / "log")
    process.start(f"http://127.0.0.1:{port}/")
    assert process._proc is not None
    parent = psutil.Process(process._proc.pid)
    deadline = time.monotonic() + 10
    while not parent.children() and time.monotonic() < deadline:
        time.sleep(0.05)
    family = [parent, *parent.children(recursive=True)]
    assert len(family) == 2
    process.stop()
    _, alive = psutil.wait_procs(family, timeout=10)
    assert alive == []


def test_a_process_that_dies_at_start_is_an_error_with_its_log(tmp_path: Path) -> None:
    script = "import sys; print('boom: bad flag'); sys.exit(3)"
    process = ManagedProcess("dies", [sys.executable, "-c", script], tmp_path / "log")
    with pytest.raises(EmulatorError, match="boom: bad flag"):
        process.start(f"http://127.0.0.1:{emulators.free_port()}/")


def test_fresh_gives_a_new_bucket_and_repr_hides_values(moto_s3: StorageEmulator) -> None:
    fresh = moto_s3.fresh()
    assert fresh.bucket != moto_s3.bucket
    assert fresh.storage_uri == f"s3://{fresh.bucket}/root"
    assert fresh.env["AWS_ENDPOINT_URL"] == moto_s3.endpoint
    assert "testing" not in repr(fresh)
    assert "AWS_SECRET_ACCESS_KEY" in repr(fresh)


def test_storage_backend_env_is_complete(storage_backend: StorageEmulator) -> None:
    env = storage_backend.env
    assert "OPSML_STORAGE_URI" in env
    expected = {
        "local": {"OPSML_SIGNING_KEY"},
        "s3": {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
        "gcs": {"STORAGE_EMULATOR_HOST", "GOOGLE_ACCOUNT_JSON_BASE64"},
        "azure": {"AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT_NAME"},
    }[storage_backend.name]
    assert expected <= set(env)
    if storage_backend.name == "local":
        assert os.path.isdir(os.path.dirname(env["OPSML_STORAGE_URI"]))


def _listener(port: int) -> psutil.Process:
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            return psutil.Process(conn.pid)
    raise AssertionError(f"nothing listens on {port}")


@pytest.mark.parametrize("backend", ["moto_s3", "fake_gcs", "azurite_blob"])
def test_each_emulator_runs_where_the_mode_says(
    request: pytest.FixtureRequest, backend: str
) -> None:
    # Both modes are proven: `make test` runs tests/storage once with local processes and once
    # with OPSML_TEST_CONTAINERS=1. The emulator is a child of this pytest, or runs under
    # the Docker engine's container shim.
    emulator: StorageEmulator = request.getfixturevalue(backend)
    port = int(emulator.endpoint.rsplit(":", 1)[1].split("/")[0])
    ancestors = _listener(port).parents()
    in_container = any(p.name().startswith("containerd-shim") for p in ancestors)
    if os.environ.get("OPSML_TEST_CONTAINERS") == "1":
        assert in_container, [p.name() for p in ancestors]
    else:
        assert not in_container and os.getpid() in {p.pid for p in ancestors}
