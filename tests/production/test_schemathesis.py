"""Schemathesis over the server's own /openapi.json: every operation fuzzed, 0 server errors.

A live gunicorn (the image's CMD, two workers) on a fresh Postgres database is driven by the
`st` CLI with the `not_a_server_error` check; the JUnit report is read back so a failure names
the operation. Seeded and bounded so the run is reproducible and takes about a minute.
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
MAX_EXAMPLES = 25


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_postgres_database("opsml_fuzz") as url:
        migrate(MAIN_BIN, url)
        yield url


def test_schemathesis_finds_no_server_errors(launch: Launch, pg_url: str, tmp_path: Path) -> None:
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
            "run",
            f"{server.url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            str(SEED),
            "--generation-deterministic",
            "--request-timeout",
            "30",
            "--workers",
            "2",
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
