"""Schemathesis over the server's own /openapi.json: every /opsml operation, `--checks all`.

A live gunicorn (the image's CMD, two workers) on a fresh Postgres database is driven by the
`st` CLI; the JUnit report is read back so a failure names the operation and the check.
Seeded and bounded so the run is reproducible and takes a minute or two.

Every check runs on every operation except those named in NOT_APPLICABLE, each with why.
Checks that need what this run does not have pass vacuously and stay on: `ignored_auth` (the
server runs without login, so the document declares no security scheme), and the stateful
`use_after_free` / `ensure_resource_availability` (the document has no links).
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.compat.harness import clean_environ
from tests.conftest import fresh_postgres_database
from tests.production.conftest import MAIN_BIN, Launch, migrate

ST = Path(sys.executable).parent / "st"
SEED = 20240611
MAX_EXAMPLES = 15

_CARD_RECORD = (
    "`card` is a row of the table registry_type names: its required fields, types and "
    "allowed keys differ per registry and are checked by app.services.records (400 naming the "
    "field), so the document keeps it an open object and schema-valid cards can be refused"
)
_DELETE_SCOPE = (
    "a delete must lie in one card version's folder (app.storage.delete_scope), judged after "
    "the path is normalized (`.`, `//`, a trailing `/`): a pattern can state the canonical "
    "spelling only, so other spellings of a deletable path, and paths of the right shape that "
    "normalize to something wider, would each fail one of the two checks"
)
# (check, "METHOD /path") -> why the check cannot apply to that operation.
NOT_APPLICABLE = {
    ("positive_data_acceptance", "POST /opsml/cards/create"): _CARD_RECORD,
    ("positive_data_acceptance", "POST /opsml/cards/update"): _CARD_RECORD,
    ("positive_data_acceptance", "POST /opsml/cards/list"): (
        "query_terms keys must be columns of the table registry_type names (400 naming the "
        "unknown term), which one schema for every registry cannot state"
    ),
    ("positive_data_acceptance", "GET /opsml/files/delete"): _DELETE_SCOPE,
    ("negative_data_rejection", "GET /opsml/files/delete"): _DELETE_SCOPE,
    ("negative_data_rejection", "GET /opsml/metrics"): (
        "GET's `name` is a list of free text in the query string: a value of the wrong type "
        "(false, 0) arrives as the same text as a valid name, so it cannot be refused"
    ),
}


def _config(path: Path) -> Path:
    # Every check on (what `--checks all` selects; that CLI flag would also override the
    # per-operation switches below), then the named exceptions.
    blocks = ["[checks]\nenabled = true\n"] + [
        f'[[operations]]\ninclude-method = "{operation.split()[0]}"\n'
        f'include-path = "{operation.split()[1]}"\nchecks.{check}.enabled = false\n'
        for check, operation in NOT_APPLICABLE
    ]
    path.write_text("\n".join(blocks))
    return path


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_postgres_database("opsml_fuzz") as url:
        migrate(MAIN_BIN, url)
        yield url


def test_schemathesis_all_checks_pass(launch: Launch, pg_url: str, tmp_path: Path) -> None:
    assert ST.exists(), "schemathesis is missing: pip install -r tests/production/requirements.txt"
    storage = tmp_path / "artifacts"
    storage.mkdir()
    server = launch(
        {"OPSML_TRACKING_URI": pg_url, "OPSML_STORAGE_URI": str(storage), "WEB_CONCURRENCY": "2"},
        ready_path="/readyz",
    )
    junit = tmp_path / "schemathesis.xml"
    proc = subprocess.run(
        [
            str(ST),
            "--config-file",
            str(_config(tmp_path / "schemathesis.toml")),
            "run",
            f"{server.url}/openapi.json",
            "--include-path-regex",
            "^/opsml/",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            str(SEED),
            "--generation-deterministic",
            "--request-timeout",
            "30",
            # One worker thread: CPython 3.11 before 3.11.8 corrupts the ast module's recursion
            # counter when two threads parse at once (gh-106905), which hypothesis does for
            # every strategy description; it surfaced as "SystemError: AST constructor
            # recursion depth mismatch". The server still runs two gunicorn workers.
            "--workers",
            "1",
            "--report",
            "junit",
            "--report-junit-path",
            str(junit),
            "--no-color",
        ],
        env={**clean_environ(), "SCHEMATHESIS_HOOKS": ""},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = proc.stdout[-6000:] + proc.stderr[-2000:]
    cases = ET.parse(junit).getroot().iter("testcase")
    names = []
    failures = []
    for case in cases:
        names.append(case.get("name", ""))
        for problem in list(case.findall("failure")) + list(case.findall("error")):
            failures.append(
                f"{case.get('name')}: {(problem.get('message') or problem.text or '')[:400]}"
            )
    assert failures == [], output
    assert proc.returncode == 0, output
    # Every operation of the document was exercised (POST cards/list, upload, metrics, ...).
    assert len(names) >= 15, names
    assert any("/opsml/files/upload" in n for n in names) and any(
        "/opsml/cards/create" in n for n in names
    )
    log = server.log_text()
    assert '"status": 500' not in log and "Traceback" not in log
    # Whatever was uploaded stayed under the root.
    assert all(
        p.resolve().is_relative_to(storage.resolve())
        for p in tmp_path.rglob("*")
        if p.is_file() and "artifacts" in p.parts
    )
