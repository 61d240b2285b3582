"""One JSON log line per request, without secrets; Prometheus counters that move."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi.testclient import TestClient

from app.observability import JsonFormatter


def test_each_request_logs_one_json_line_without_query_or_credentials(
    make_client, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(login=True, OPSML_USERNAME="u", OPSML_PASSWORD="pw-secret-123")
    with caplog.at_level(logging.INFO, logger="opsml_server.access"):
        client.get(
            "/opsml/files/exists",
            params={"path": "opsml-root:/token=abc"},
            auth=("u", "pw-secret-123"),
        )
    [record] = [r for r in caplog.records if r.name == "opsml_server.access"]
    line = json.loads(JsonFormatter().format(record))
    assert line["route"] == "/opsml/files/exists" and line["status"] == 200
    assert line["method"] == "GET" and line["duration_ms"] >= 0
    assert "token=abc" not in json.dumps(line) and "pw-secret-123" not in json.dumps(line)


def test_prometheus_counts_requests_by_route_and_status(client: TestClient) -> None:
    def count() -> float:
        text = client.get("/metrics").text
        for line in text.splitlines():
            if (
                line.startswith("opsml_http_requests_total{")
                and 'route="/opsml/registry/table"' in line
                and 'status="400"' in line
            ):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = count()
    client.get("/opsml/registry/table", params={"registry_type": "bogus"})
    client.get("/opsml/registry/table", params={"registry_type": "bogus"})
    assert count() == before + 2


def test_database_password_never_reaches_a_response_or_log(
    postgres_url: str,
    tmp_path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from sqlalchemy.engine import make_url

    from app.main import create_app
    from app.settings import Settings

    secret = "pw-in-the-uri-9f3k"  # trust auth on the test server accepts any password
    url = make_url(postgres_url).set(password=secret).render_as_string(hide_password=False)
    settings = Settings(OPSML_TRACKING_URI=url, OPSML_STORAGE_URI=str(tmp_path))
    seen = []
    with caplog.at_level(logging.DEBUG), TestClient(create_app(settings, login=False)) as client:
        for method, route, body in [
            ("GET", "/readyz", None),
            ("GET", "/openapi.json", None),
            ("GET", "/debug", None),
            ("POST", "/opsml/cards/list", {"registry_type": "data", "max_date": "bad"}),
            ("POST", "/opsml/cards/create", {"registry_type": "data", "card": {"uid": 1}}),
        ]:
            seen.append(client.request(method, route, json=body).text)
    seen.extend(r.getMessage() for r in caplog.records)
    seen.append(repr(settings))
    captured = capsys.readouterr()
    seen.extend([captured.out, captured.err])
    assert not any(secret in text for text in seen)


def _record_of(exc: BaseException, msg: str = "failed: %s") -> logging.LogRecord:
    return logging.LogRecord("x", logging.ERROR, __file__, 1, msg, (exc,), (type(exc), exc, None))


def test_an_error_record_is_one_line_with_classes_and_never_values() -> None:
    from sqlalchemy.exc import DataError

    secret = "value-from-a-request-4k2"
    try:
        try:
            raise DataError(
                "SELECT * FROM t WHERE name = %s", (secret,), Exception({"C": "22P02", "M": secret})
            )
        except DataError as db_error:
            raise RuntimeError(f"wrapped {db_error}") from db_error
    except RuntimeError as exc:
        record = _record_of(exc)
    line = JsonFormatter().format(record)
    assert "\n" not in line and secret not in line and "SELECT" not in line
    parsed = json.loads(line)
    assert parsed["msg"] == "failed: RuntimeError"
    assert (parsed["error"], parsed["error_cause"], parsed["sqlstate"]) == (
        "RuntimeError",
        "DataError",
        "22P02",
    )


def test_migrate_logs_alembic_as_json_lines(tmp_path) -> None:
    import subprocess
    import sys

    from tests.app.test_migrations import _seed_reference_database

    url = f"sqlite:///{tmp_path / 'adopted.db'}"
    _seed_reference_database(url)  # adopting runs the Alembic scripts (a new file does not)
    proc = subprocess.run(
        [sys.executable, "-m", "app", "migrate"],
        env={"OPSML_TRACKING_URI": url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    *logged, last = proc.stdout.splitlines()
    from app.db.migrate import SCHEMA_HEAD

    assert last == f"opsml-server: database schema at revision {SCHEMA_HEAD}"
    records = [json.loads(line) for line in logged]
    assert any(r["logger"].startswith("alembic") for r in records), proc.stdout
    assert proc.stderr == ""
