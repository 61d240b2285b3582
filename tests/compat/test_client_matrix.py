"""Every released opsml 2.x client against our server under the production gunicorn command.

* The matrix: each release runs the whole flow (`scenarios/flow.py`: DataCard and ModelCard
  life cycles, a project run with metrics, parameters and artifacts, version filters) on one
  shared SQLite server; the oldest and the newest also run it on Postgres.
* The mixed fleet: the flow's last part registers cards named after the client's release;
  then every release lists and loads the cards of every other release (`scenarios/fleet.py`).

Parts a client release itself cannot do are named in `CLIENT_LIMITS` with the reason; the test
fails if such a part starts passing, or if any other part fails.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.compat import client_matrix, harness
from tests.support.postgres import fresh_postgres_database

pytestmark = [pytest.mark.compat, pytest.mark.timeout(2400)]

RELEASES = client_matrix.releases()
ON_POSTGRES = [RELEASES[0], RELEASES[-1]]
# Flows run one client at a time: clients 2.0-2.1.6 pick a new project's id themselves (max+1
# from cards/list), so two creating new projects at once can collide and the second create is
# a 409 (the reference: a 500). See tests/compat/README.md. Reads only read: two at a time.
PARALLEL_FLOWS = 1
PARALLEL_READS = 2
# {release: {flow part: why that client cannot do it}}; every other part must pass.
CLIENT_LIMITS: dict[str, dict[str, str]] = {}
# Checks a part skipped because the client release cannot do them (reported by the scenario).
NO_SERVER_METRICS = "metrics stay in the RunCard (no PUT metrics before 2.1.8)"


def _expected_skips(release: str) -> dict[str, list[str]]:
    old = tuple(int(p) for p in release.split(".")) < (2, 1, 8)
    return {"project_run": [NO_SERVER_METRICS]} if old else {}


Results = dict[str, dict[str, object]]


@pytest.fixture(scope="module")
def matrix_venvs() -> dict[str, client_matrix.ClientVenv]:
    return client_matrix.ensure(RELEASES)


def _server(tracking_uri: str, folder: Path) -> harness.LiveServer:
    storage = folder / "storage"
    storage.mkdir(parents=True)
    log = folder / "server.log"
    if not tracking_uri.startswith("sqlite"):
        harness.migrate(tracking_uri, log)
    return harness.our_server(tracking_uri, {"OPSML_STORAGE_URI": str(storage)}, log).start()


def _flows(
    venvs: dict[str, client_matrix.ClientVenv],
    releases: list[str],
    server: harness.LiveServer,
    folder: Path,
) -> Results:
    def one(release: str) -> dict[str, object]:
        env = {"OPSML_FLEET_DIR": str(folder / "fleet")}
        run = harness.run_scenario(
            venvs[release].python, server, "flow", folder / f"client-{release}", env
        )
        return run.summary

    with ThreadPoolExecutor(max_workers=PARALLEL_FLOWS) as pool:
        return dict(zip(releases, pool.map(one, releases), strict=True))


@pytest.fixture(scope="module")
def sqlite_run(
    matrix_venvs: dict[str, client_matrix.ClientVenv], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[harness.LiveServer, Path, Results]]:
    folder = tmp_path_factory.mktemp("matrix-sqlite")
    server = _server(f"sqlite:///{folder / 'opsml.db'}", folder)
    try:
        yield server, folder, _flows(matrix_venvs, RELEASES, server, folder)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def postgres_results(
    matrix_venvs: dict[str, client_matrix.ClientVenv], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Results]:
    folder = tmp_path_factory.mktemp("matrix-postgres")
    with fresh_postgres_database("opsml_matrix") as uri:
        server = _server(uri, folder)
        try:
            yield _flows(matrix_venvs, ON_POSTGRES, server, folder)
        finally:
            server.stop()


def _check_parts(release: str, summary: dict[str, object]) -> None:
    assert summary["opsml"] == release
    parts = summary["parts"]
    assert isinstance(parts, dict)
    failed = {name: part["error"] for name, part in parts.items() if not part["ok"]}
    expected = CLIENT_LIMITS.get(release, {})
    assert failed.keys() == expected.keys(), json.dumps(
        {"failed": failed, "known client limits": expected}, indent=1
    )
    skipped = {name: part["client_limits"] for name, part in parts.items() if part["client_limits"]}
    assert skipped == _expected_skips(release)


@pytest.mark.parametrize("release", RELEASES)
def test_flow_on_sqlite(release: str, sqlite_run: tuple[harness.LiveServer, Path, Results]) -> None:
    _check_parts(release, sqlite_run[2][release])


@pytest.mark.parametrize("release", ON_POSTGRES)
def test_flow_on_postgres(release: str, postgres_results: Results) -> None:
    _check_parts(release, postgres_results[release])


@pytest.fixture(scope="module")
def fleet_reads(
    matrix_venvs: dict[str, client_matrix.ClientVenv],
    sqlite_run: tuple[harness.LiveServer, Path, Results],
) -> Results:
    server, folder, _ = sqlite_run

    def one(release: str) -> dict[str, object]:
        env = {"OPSML_FLEET_DIR": str(folder / "fleet")}
        run = harness.run_scenario(
            matrix_venvs[release].python, server, "fleet", folder / f"reader-{release}", env
        )
        return run.summary

    with ThreadPoolExecutor(max_workers=PARALLEL_READS) as pool:
        return dict(zip(RELEASES, pool.map(one, RELEASES), strict=True))


@pytest.mark.parametrize("release", RELEASES)
def test_mixed_fleet_reads_every_release(release: str, fleet_reads: Results) -> None:
    writers = [w for w in RELEASES if "fleet" not in CLIENT_LIMITS.get(w, {})]
    assert sorted(fleet_reads[release]["writers"], key=RELEASES.index) == writers  # type: ignore[arg-type]
