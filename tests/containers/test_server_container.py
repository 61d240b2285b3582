"""The production image in a real Docker engine, driven by the real opsml 2.2.4 client.

Each test starts the image as the chart runs it (non-root, arbitrary uid, read-only root
filesystem, /tmp as tmpfs) through `OpsmlServerContainer`, the class users get from
packages/opsml-server-testcontainers.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from opsml_server_testcontainers import OpsmlServerContainer, OpsmlServerNotReady

from tests.compat import venvs
from tests.compat.harness import run_scenario
from tests.containers.image import BuiltImage
from tests.production.traffic import slow_body, upload_headers
from tests.support.emulators import StorageEmulator
from tests.support.postgres import fresh_postgres_database

pytestmark = [pytest.mark.containers, pytest.mark.timeout(1800)]

ARBITRARY_UID = 12345  # not the image's 10001: OpenShift-style random uids, group 0


@dataclass
class ContainerServer:
    """What `run_scenario` needs of a server: its URL, a name and its log."""

    container: OpsmlServerContainer
    kind: str = "ours (container)"

    @property
    def url(self) -> str:
        return self.container.tracking_uri

    def log_text(self) -> str:
        stdout, stderr = self.container.get_logs()
        return (stdout or b"").decode(errors="replace") + (stderr or b"").decode(errors="replace")

    def log_tail(self, limit: int = 4000) -> str:
        return self.log_text()[-limit:]


def _hardened(image: BuiltImage, data: Path, **options: Any) -> OpsmlServerContainer:
    """The image as the chart runs it; `data` is the writable volume at the working directory."""
    data.mkdir(parents=True, exist_ok=True)
    os.chown(data, ARBITRARY_UID, 0)
    container = OpsmlServerContainer(
        image.tag,
        host_network=True,
        workers=2,
        user=f"{ARBITRARY_UID}:0",
        read_only=True,
        # The image's own HEALTHCHECK command, probed every second instead of every 30.
        healthcheck={"interval": 1_000_000_000, "timeout": 5_000_000_000, "retries": 3},
        **options,
    )
    container.with_volume_mapping(str(data), "/srv/opsml", "rw")
    container.with_tmpfs_mount("/tmp", "size=64m,mode=1777")
    return container


def _health(container: OpsmlServerContainer, timeout_s: float = 30.0) -> str:
    deadline = time.monotonic() + timeout_s
    status = "none"
    while time.monotonic() < deadline:
        wrapped = container.get_wrapped_container()
        wrapped.reload()
        status = wrapped.attrs["State"].get("Health", {}).get("Status", "none")
        if status in {"healthy", "unhealthy"}:
            return str(status)
        time.sleep(0.5)
    return str(status)


def _assert_json_lines(log: str) -> None:
    for line in log.splitlines():
        if line.strip():
            json.loads(line)  # raises on any line that is not one JSON object


@pytest.fixture(scope="module")
def client_python() -> Path:
    return venvs.ensure("client").python


def test_embedded_default_runs_read_only_as_any_uid_turns_healthy_and_serves_the_client(
    server_image: BuiltImage, client_python: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    with _hardened(server_image, data) as container:
        assert _health(container) == "healthy"
        server = ContainerServer(container)
        summary = run_scenario(client_python, server, "datacard", tmp_path / "client").summary
        assert summary["version"] == "1.0.0" and summary["checks"] >= 30
        log = server.log_text()
    # Everything the server wrote is in the volume: the database and the artifacts.
    assert (data / "opsml_data" / "opsml.db").is_file()
    assert any(path.is_file() for path in (data / "opsml_data" / "artifacts").rglob("*"))
    _assert_json_lines(log)


def test_migrate_from_the_image_then_postgres_and_s3_serve_a_project_run(
    server_image: BuiltImage, client_python: Path, moto_s3: StorageEmulator, tmp_path: Path
) -> None:
    storage = moto_s3.fresh()
    with fresh_postgres_database("opsml_container") as url:
        # A shared database is never migrated by the server itself: readiness says so.
        unmigrated = _hardened(
            server_image,
            tmp_path / "unmigrated",
            tracking_uri=url,
            env=storage.env,
        )
        try:
            with pytest.raises(OpsmlServerNotReady, match="pass migrate=True"):
                unmigrated.start()
        finally:
            unmigrated.stop()
        # `opsml-server migrate` from the same image, as the chart's migration Job runs it.
        with _hardened(
            server_image, tmp_path / "data", tracking_uri=url, env=storage.env, migrate=True
        ) as container:
            server = ContainerServer(container)
            run = run_scenario(client_python, server, "project_run", tmp_path / "client").summary
            model = run_scenario(client_python, server, "modelcard", tmp_path / "client").summary
            log = server.log_text()
    assert run["checks"] >= 25 and model["checks"] >= 25
    _assert_json_lines(log)


def test_sigterm_lets_an_upload_in_flight_finish(server_image: BuiltImage, tmp_path: Path) -> None:
    data = tmp_path / "data"
    payload = os.urandom(6 * 1024 * 1024)
    write_path = "opsml-root:/OPSML_DATA_REGISTRY/repo/card/v1.0.0/blob.bin"
    outcome: dict[str, Any] = {}
    chunks_sent = threading.Event()

    def upload(url: str) -> None:
        def on_chunk(index: int) -> None:
            if index == 4:
                chunks_sent.set()

        try:
            answer = httpx.post(
                f"{url}/opsml/files/upload",
                headers=upload_headers(write_path, len(payload)),
                content=slow_body(payload, 256 * 1024, 0.1, on_chunk),
                timeout=60,
            )
            outcome["status"] = answer.status_code
        except httpx.HTTPError as error:
            outcome["error"] = repr(error)

    with _hardened(server_image, data) as container:
        sender = threading.Thread(target=upload, args=(container.tracking_uri,))
        sender.start()
        assert chunks_sent.wait(30), "the upload never got going"
        wrapped = container.get_wrapped_container()
        wrapped.kill(signal="SIGTERM")
        sender.join(60)
        exit_code = wrapped.wait(timeout=60)["StatusCode"]
    assert outcome == {"status": 200}, outcome
    assert exit_code == 0
    stored = data / "opsml_data" / "artifacts" / "OPSML_DATA_REGISTRY/repo/card/v1.0.0/blob.bin"
    assert hashlib.sha256(stored.read_bytes()).digest() == hashlib.sha256(payload).digest()
