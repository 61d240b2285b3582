"""Fixtures for the compatibility suite: venvs, a database, storage and a live server.

Which server the scenarios talk to is chosen by ``OPSML_COMPAT_SERVER``:

* ``ours`` (default): our app under gunicorn with two uvicorn workers, as in production, on
  each target of ``OPSML_COMPAT_TARGETS`` (database-storage pairs; default: every one of
  sqlite-local, postgres-local, postgres-s3, postgres-gcs, postgres-azure, the cloud ones on
  the emulators of ``tests/support/emulators.py``);
* ``reference``: the real opsml 2.2.4 server (sqlite-local only). This validates the
  scenarios themselves; it is not what CI checks.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.compat import harness, venvs
from tests.support.emulators import StorageEmulator
from tests.support.postgres import fresh_postgres_database

SERVER_KIND = os.environ.get("OPSML_COMPAT_SERVER", "ours")
if SERVER_KIND not in {"ours", "reference"}:
    raise pytest.UsageError(
        f"OPSML_COMPAT_SERVER must be 'ours' or 'reference', not {SERVER_KIND!r}"
    )

_ALL_TARGETS = (
    ["sqlite-local"]
    if SERVER_KIND == "reference"
    else ["sqlite-local", "postgres-local", "postgres-s3", "postgres-gcs", "postgres-azure"]
)
_WANTED = os.environ.get("OPSML_COMPAT_TARGETS", ",".join(_ALL_TARGETS)).split(",")
COMPAT_TARGETS = [target for target in _ALL_TARGETS if target in _WANTED]
if not COMPAT_TARGETS:
    raise pytest.UsageError(f"OPSML_COMPAT_TARGETS={_WANTED} selects none of {_ALL_TARGETS}")
_EMULATOR_FIXTURE = {"s3": "moto_s3", "gcs": "fake_gcs", "azure": "azurite_blob"}


@pytest.fixture(scope="session")
def compat_venvs() -> dict[str, venvs.Venv]:
    """Both environments, built in parallel on a cold cache, reused from the cache after."""
    return venvs.ensure_many(["client", "reference"])


@pytest.fixture(scope="session")
def client_venv(compat_venvs: dict[str, venvs.Venv]) -> venvs.Venv:
    return compat_venvs["client"]


@pytest.fixture(scope="session")
def reference_venv(compat_venvs: dict[str, venvs.Venv]) -> venvs.Venv:
    return compat_venvs["reference"]


@pytest.fixture(params=COMPAT_TARGETS)
def compat_target(request: pytest.FixtureRequest) -> str:
    target: str = request.param
    return target


@pytest.fixture
def compat_storage_env(
    compat_target: str, request: pytest.FixtureRequest, tmp_path: Path
) -> dict[str, str]:
    """Environment giving the server its artifact storage: a fresh directory or bucket."""
    backend = compat_target.split("-", 1)[1]
    if backend == "local":
        root = tmp_path / "storage"
        root.mkdir()
        return {"OPSML_STORAGE_URI": str(root)}
    emulator: StorageEmulator = request.getfixturevalue(_EMULATOR_FIXTURE[backend])
    return dict(emulator.fresh().env)


@pytest.fixture
def compat_tracking_uri(compat_target: str, tmp_path: Path) -> Iterator[str]:
    if compat_target.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'opsml.db'}"
        return
    with fresh_postgres_database("opsml_compat") as uri:
        yield uri


@pytest.fixture
def server_log(tmp_path: Path) -> Path:
    return tmp_path / "server.log"


@pytest.fixture
def live_server(
    request: pytest.FixtureRequest,
    compat_tracking_uri: str,
    compat_storage_env: dict[str, str],
    server_log: Path,
) -> Iterator[harness.LiveServer]:
    """The server under test, started fresh for this test and stopped with its process group."""
    if SERVER_KIND == "reference":
        reference: venvs.Venv = request.getfixturevalue("reference_venv")
        server = harness.reference_server(
            reference.bin, compat_tracking_uri, compat_storage_env, server_log
        )
    else:
        if not compat_tracking_uri.startswith("sqlite"):
            harness.migrate(compat_tracking_uri, server_log)
        server = harness.our_server(compat_tracking_uri, compat_storage_env, server_log)
    server.start()
    try:
        yield server
    finally:
        server.stop()


ScenarioRunner = Callable[..., harness.ScenarioRun]


@pytest.fixture
def run_scenario(client_venv: venvs.Venv, tmp_path: Path) -> ScenarioRunner:
    """``run_scenario(server, "datacard", **env)`` -> the scenario's summary, or a failure."""

    def runner(server: harness.LiveServer, name: str, **extra_env: str) -> harness.ScenarioRun:
        return harness.run_scenario(
            client_venv.python, server, name, tmp_path / f"client-{name}", extra_env
        )

    return runner
