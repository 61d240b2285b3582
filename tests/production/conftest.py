"""Fixtures for the production-readiness suite: live gunicorn servers, a throwaway Postgres.

Servers are started with the Dockerfile's CMD (see `server.py`) from the main venv, except in
`test_image.py`, which builds the image's own venv. Every process started here runs in its own
process group and is stopped at teardown.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.production.pgcluster import ThrowawayCluster, new_cluster
from tests.production.server import Gunicorn
from tests.support.processes import free_port

MAIN_BIN = Path(sys.executable).parent

Launch = Callable[..., Gunicorn]


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[ThrowawayCluster]:
    """A private PostgreSQL cluster on a free port; tests may stop and start it."""
    cluster = new_cluster(free_port())
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def pg_fault_url(pg_cluster: ThrowawayCluster) -> Iterator[str]:
    """A fresh database on the throwaway cluster, which is running again after the test."""
    url = pg_cluster.create_database(f"opsml_fault_{uuid.uuid4().hex[:10]}")
    yield url
    if not pg_cluster.is_running():
        pg_cluster.start()


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launch]:
    """Start gunicorn (the image's CMD) with the given environment; stopped at teardown."""
    servers: list[Gunicorn] = []

    def factory(
        env: dict[str, str],
        bin_dir: Path = MAIN_BIN,
        ready_path: str = "/livez",
        app_spec: str | None = None,
    ) -> Gunicorn:
        workdir = tmp_path / f"server-{len(servers)}"
        workdir.mkdir()
        server = Gunicorn(bin_dir=bin_dir, env=env, workdir=workdir, app_spec=app_spec)
        servers.append(server)
        return server.start(ready_path)

    yield factory
    for server in servers:
        server.stop()


def migrate(bin_dir: Path, tracking_uri: str) -> None:
    import subprocess

    from tests.compat.harness import clean_environ

    proc = subprocess.run(
        [str(bin_dir / "opsml-server"), "migrate"],
        env={**clean_environ(), "OPSML_TRACKING_URI": tracking_uri},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
