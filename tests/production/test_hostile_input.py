"""Hostile input not covered by tests/app/test_files_api.py: 4xx with a message, never a 500,
and nothing written outside the storage root.

In-process on SQLite and Postgres (the shared `client` fixture), plus the HTTP layer of a live
gunicorn for what never reaches the app (malformed requests, huge request lines and headers).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.services.cards import ERR_TERM_JSON, ERR_TERM_VALUE
from app.services.records import ERR_FIELD_TYPE
from app.services.values import ERR_SURROGATE
from app.storage.store import ERR_PATH_CONFLICT, ERR_WRITE_ROOT
from tests.production.conftest import Launch
from tests.production.traffic import raw_request

R = "opsml-root:/OPSML_DATA_REGISTRY/hostile"


def upload(client: TestClient, write_path: str | bytes, data: bytes = b"x"):
    return client.post(
        "/opsml/files/upload", headers={"write_path": write_path}, files={"file": ("f", data)}
    )


def _written(tmp_path: Path) -> list[str]:
    """Every file the server left, except the SQLite database itself."""
    return sorted(
        p.relative_to(tmp_path).as_posix()
        for p in tmp_path.rglob("*")
        if p.is_file() and not p.name.startswith("opsml.db")
    )


@pytest.mark.parametrize(
    "root", ["opsml-root:/", "opsml-root:", "opsml-root:/.", "opsml-root://./"]
)
def test_upload_onto_the_root_itself_is_refused(
    client: TestClient, tmp_path: Path, root: str
) -> None:
    response = upload(client, root)
    assert (response.status_code, response.json()["detail"]) == (400, ERR_WRITE_ROOT)
    assert _written(tmp_path) == []  # before the fix the temp file went to the root's parent


def test_file_and_directory_name_clashes_are_409(client: TestClient, tmp_path: Path) -> None:
    assert upload(client, f"{R}/dir/inner.bin").status_code == 200
    onto_dir = upload(client, f"{R}/dir")
    assert onto_dir.status_code == 409
    assert onto_dir.json()["detail"] == ERR_PATH_CONFLICT.format(path=f"{R}/dir")
    under_file = upload(client, f"{R}/dir/inner.bin/child")
    assert under_file.status_code == 409, under_file.text
    assert _written(tmp_path) == ["artifacts/OPSML_DATA_REGISTRY/hostile/dir/inner.bin"]


@pytest.mark.parametrize(
    "path",
    [
        "opsml-root://OPSML_DATA_REGISTRY//hostile///double",  # doubled slashes stay inside
        "opsml-root:/./OPSML_DATA_REGISTRY/./hostile/dot",
        "opsml-root:/OPSML_DATA_REGISTRY/hostile/%2e%2e/encoded",  # a literal, harmless name
        "opsml-root:/OPSML_DATA_REGISTRY/hostile/....//dots",
    ],
)
def test_odd_but_harmless_paths_stay_inside_the_root(
    client: TestClient, tmp_path: Path, path: str
) -> None:
    assert upload(client, path).status_code == 200
    written = _written(tmp_path)
    assert len(written) == 1 and written[0].startswith("artifacts/OPSML_DATA_REGISTRY/hostile/")


def test_non_ascii_header_bytes_stay_inside_the_root(client: TestClient, tmp_path: Path) -> None:
    assert upload(client, b"opsml-root:/OPSML_DATA_REGISTRY/hostile/\xff\xfe").status_code == 200
    assert all(p.startswith("artifacts/") for p in _written(tmp_path))
    response = upload(client, b"opsml-root:/../\xff")
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"{not json", 422, "JSON decode error"),
        (b"[1, 2]", 422, "valid dictionary"),
        (b"[" * 50_000 + b"]" * 50_000, 400, "error parsing the body"),
        (b'{"registry_type": "data", "limit": 1e999}', 422, "limit"),
        (b'{"registry_type": "data", "limit": -1}', 422, "limit"),
        (b'{"registry_type": "data", "limit": "ten"}', 422, "limit"),
        (b'{"registry_type": "data", "name": "' + b"n" * 100_000 + b'"}', 422, "name"),
        (b'{"registry_type": "data", "max_date": "2024-13-45"}', 400, "max_date"),
        (b'{"registry_type": "nope"}', 400, "registry"),
        (b"\xff\xfe\x00garbage", 422, "JSON decode error"),
    ],
)
def test_malformed_list_bodies_are_4xx_with_a_message(
    client: TestClient, body: bytes, status: int, needle: str
) -> None:
    response = client.post(
        "/opsml/cards/list", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == status, response.text
    assert needle.lower() in response.json()["detail"].lower()


@pytest.mark.parametrize("value", [{"a": 1}, [1, 2]])
def test_structured_query_term_values_are_400(client: TestClient, value: object) -> None:
    response = client.post(
        "/opsml/cards/list", json={"registry_type": "data", "query_terms": {"name": value}}
    )
    assert (response.status_code, response.json()["detail"]) == (
        400,
        ERR_TERM_VALUE.format(term="name"),
    )


@pytest.mark.parametrize(
    ("registry", "terms", "message"),
    [
        (
            "data",
            {"timestamp": "abc"},
            ERR_FIELD_TYPE.format(field="timestamp", expected="an integer"),
        ),
        ("data", {"tags": "x"}, ERR_TERM_JSON.format(term="tags")),
        (
            "audit",
            {"approved": "yes"},
            ERR_FIELD_TYPE.format(field="approved", expected="true or false"),
        ),
        ("data", {"contact": 5}, ERR_FIELD_TYPE.format(field="contact", expected="a string")),
        (
            "data",
            {"timestamp": 2**63},
            ERR_FIELD_TYPE.format(field="timestamp", expected="an integer"),
        ),
        (
            "project",
            {"project_id": 2**40},
            ERR_FIELD_TYPE.format(field="project_id", expected="a 32-bit integer"),
        ),
    ],
)
def test_wrong_typed_query_terms_are_400_on_every_database(
    client: TestClient, registry: str, terms: dict, message: str
) -> None:
    # Were 500s on Postgres: it refuses to compare a bigint, boolean or JSON column with text.
    response = client.post(
        "/opsml/cards/list", json={"registry_type": registry, "query_terms": terms}
    )
    assert (response.status_code, response.json()["detail"]) == (400, message)


@pytest.mark.parametrize("raw", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_non_finite_metric_values_are_refused(client: TestClient, raw: bytes) -> None:
    body = b'{"metric": [{"run_uid": "r", "name": "m", "value": ' + raw + b"}]}"
    response = client.put(
        "/opsml/metrics", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert "finite" in response.json()["detail"]
    # Nothing was stored, so reading the run back is still valid JSON.
    read = client.post("/opsml/metrics", json={"run_uid": "r"})
    assert read.status_code == 200 and read.json() == {"metric": None}


@pytest.mark.parametrize(
    ("card", "needle"),
    [
        ({"uid": "u", "name": "a", "repository": "b", "version": {"v": 1}}, "version"),
        (
            {"uid": "u", "name": "a", "repository": "b", "version": "1.0.0", "timestamp": 10**40},
            "timestamp",
        ),
        (
            {"uid": "u", "name": "a", "repository": "b", "version": "1.0.0", "timestamp": "soon"},
            "timestamp",
        ),
        ({"uid": "u", "name": "a", "repository": "b"}, "version"),
        ({"uid": "u", "name": "a", "repository": "b", "version": "1.0.0", "no_such": 1}, "no_such"),
    ],
)
def test_wrong_types_in_a_card_are_400(client: TestClient, card: dict, needle: str) -> None:
    response = client.post("/opsml/cards/create", json={"card": card, "registry_type": "data"})
    assert response.status_code == 400, response.text
    assert needle in response.json()["detail"]


@pytest.fixture
def live(launch: Launch, tmp_path: Path):
    (tmp_path / "artifacts").mkdir()
    return launch(
        {
            "OPSML_TRACKING_URI": f"sqlite:///{tmp_path / 'opsml.db'}",
            "OPSML_STORAGE_URI": str(tmp_path / "artifacts"),
            "WEB_CONCURRENCY": "1",
        }
    )


def test_http_layer_rejects_garbage_huge_lines_and_headers(live) -> None:
    def status_of(data: bytes) -> int:
        answer = raw_request(live.port, data)
        assert answer.startswith(b"HTTP/1.1 "), answer[:200]
        return int(answer.split(b" ", 2)[1])

    assert 400 <= status_of(b"THIS IS NOT HTTP\r\n\r\n") < 500
    huge_query = b"GET /opsml/files/exists?path=" + b"a" * 200_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    assert status_of(huge_query) == 414
    # httptools itself has no header size limit; app.http_protocol adds OPSML_MAX_HEADER_BYTES.
    huge_header = b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 200_000 + b"\r\n\r\n"
    assert status_of(huge_header) == 431
    many_headers = b"GET /livez HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 20_000 + b"\r\n"
    assert status_of(many_headers) == 431
    bad_length = (
        b"POST /opsml/cards/list HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n"
        b"Content-Type: application/json\r\n\r\n{}"
    )
    assert 400 <= status_of(bad_length) < 500
    # A long but well-formed query value reaches the app and gets its clear 422.
    long_value = (
        b"GET /opsml/files/exists?path=opsml-root:/"
        + b"a" * 5000
        + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    answer = raw_request(live.port, long_value, half_close=False)
    assert answer.startswith(b"HTTP/1.1 422") and b"at most 1024 characters" in answer
    assert b"HTTP/1.1 200" in raw_request(
        live.port, b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", half_close=False
    )
    assert "Traceback" not in live.log_text()


@pytest.mark.parametrize("escaped", [b"a\\u0000b", b"a\\ud800b"])
@pytest.mark.parametrize("route", ["metrics", "cards/list"])
def test_text_the_database_cannot_store_is_400(
    client: TestClient, escaped: bytes, route: str
) -> None:
    from app.schemas import ERR_NUL

    if route == "metrics":
        method = "PUT"
        body = b'{"metric": [{"run_uid": "' + escaped + b'", "name": "m", "value": 1}]}'
    else:
        method = "POST"
        body = b'{"registry_type": "data", "name": "' + escaped + b'"}'
    response = client.request(
        method, f"/opsml/{route}", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code != 500, response.text
    if b"ud800" in escaped:  # typed fields refuse it in validation, untyped ones at encoding
        assert response.status_code in (400, 422), response.text
        assert "unicode" in response.json()["detail"].lower()
    else:
        # Postgres cannot store NUL, so typed text fields refuse it on every database alike.
        assert response.status_code == 422, response.text
        assert ERR_NUL in response.json()["detail"]


def test_unpaired_surrogate_in_a_card_is_400(client: TestClient) -> None:
    body = (
        b'{"registry_type": "data", "card": {"uid": "s1", "name": "a", "repository": "b",'
        b' "version": "1.0.0", "contact": "x\\ud800y"}}'
    )
    response = client.post(
        "/opsml/cards/create", content=body, headers={"content-type": "application/json"}
    )
    assert (response.status_code, response.json()["detail"]) == (
        400,
        ERR_SURROGATE.format(field="contact"),
    )
