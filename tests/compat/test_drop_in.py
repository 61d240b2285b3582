"""Drop-in: a registry written by the reference opsml 2.2.4 server, served by ours.

The reference server registers cards, a model and a project run into a SQLite file and a
storage directory. Our server is then started on the very same file and directory (it adopts
the database through its migrations at start-up) and the real client lists and loads all of
it through ours, then writes more. Nothing the reference wrote may be lost or altered: every
row (by primary key, every original column) and every stored file is compared afterwards.

With ``OPSML_COMPAT_SERVER=reference`` the second server is the reference again, which
validates the two scenarios themselves.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.compat import harness, venvs
from tests.compat.conftest import SERVER_KIND, ScenarioRunner

pytestmark = [pytest.mark.compat, pytest.mark.timeout(1800)]

JSON_COLUMNS = {"tags", "datacard_uids", "modelcard_uids", "runcard_uids", "artifact_uris"}
# Bookkeeping tables of migration tools are expected to change on adoption.
VERSION_TABLES = {"opsml_alembic_version", "alembic_version"}


def _snapshot(db: Path) -> dict[str, dict[tuple[Any, ...], dict[str, Any]]]:
    """Every row of every table, keyed by primary key; JSON columns parsed."""
    connection = sqlite3.connect(db)
    try:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        snapshot: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {}
        for table in tables:
            if table in VERSION_TABLES:
                continue
            info = connection.execute(f'PRAGMA table_info("{table}")').fetchall()
            columns = [column[1] for column in info]
            key_columns = [column[1] for column in sorted(info, key=lambda c: c[5]) if column[5]]
            rows: dict[tuple[Any, ...], dict[str, Any]] = {}
            for values in connection.execute(f'SELECT * FROM "{table}"'):
                row = dict(zip(columns, values, strict=True))
                for column in JSON_COLUMNS & row.keys():
                    if isinstance(row[column], str):
                        row[column] = json.loads(row[column])
                rows[tuple(row[c] for c in key_columns or columns)] = row
            snapshot[table] = rows
        return snapshot
    finally:
        connection.close()


def _files(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_reference_registry_served_by_our_server(
    tmp_path: Path,
    reference_venv: venvs.Venv,
    run_scenario: ScenarioRunner,
) -> None:
    db = tmp_path / "opsml.db"
    storage = tmp_path / "storage"
    storage.mkdir()
    tracking_uri = f"sqlite:///{db}"
    storage_env = {"OPSML_STORAGE_URI": str(storage)}
    manifest = tmp_path / "manifest.json"

    reference = harness.reference_server(
        reference_venv.bin, tracking_uri, storage_env, tmp_path / "reference.log"
    ).start()
    try:
        seeded = run_scenario(reference, "seed_registry", OPSML_COMPAT_MANIFEST=str(manifest))
    finally:
        reference.stop()
    assert seeded.summary["cards"] == 6

    before = _snapshot(db)
    files_before = _files(storage)
    counts = {table: len(rows) for table, rows in before.items()}
    assert counts["OPSML_DATA_REGISTRY"] == 5
    assert counts["OPSML_MODEL_REGISTRY"] == 1
    assert counts["OPSML_RUN_REGISTRY"] == 1
    assert counts["OPSML_PROJECT_REGISTRY"] == 1
    assert counts["OPSML_RUN_METRICS"] == 3
    assert len(files_before) >= 14

    if SERVER_KIND == "reference":
        server = harness.reference_server(
            reference_venv.bin, tracking_uri, storage_env, tmp_path / "second.log"
        )
    else:
        server = harness.our_server(tracking_uri, storage_env, tmp_path / "ours.log")
    server.start()
    try:
        verified = run_scenario(server, "verify_registry", OPSML_COMPAT_MANIFEST=str(manifest))
    finally:
        server.stop()
    assert verified.summary["verified_cards"] == 6

    after = _snapshot(db)
    lost = {
        table: sorted(set(rows) - set(after.get(table, {})))
        for table, rows in before.items()
        if set(rows) - set(after.get(table, {}))
    }
    assert not lost, f"rows written by the reference are gone after adoption: {lost}"
    changed = [
        (table, key, column, row[column], after[table][key].get(column, "<column missing>"))
        for table, rows in before.items()
        for key, row in rows.items()
        for column in row
        if after[table][key].get(column, "<column missing>") != row[column]
    ]
    assert not changed, f"adopted rows were altered (table, key, column, before, after): {changed}"
    # The verify scenario added exactly one DataCard version and one project.
    assert len(after["OPSML_DATA_REGISTRY"]) == counts["OPSML_DATA_REGISTRY"] + 1
    assert len(after["OPSML_PROJECT_REGISTRY"]) == counts["OPSML_PROJECT_REGISTRY"] + 1

    files_after = _files(storage)
    missing_or_changed = {
        path: digest for path, digest in files_before.items() if files_after.get(path) != digest
    }
    assert not missing_or_changed, f"stored files lost or changed: {sorted(missing_or_changed)}"
