"""JSON bodies are bounded by OPSML_MAX_JSON_BYTES on every route that reads one; uploads are not.

On SQLite and Postgres: a refused create must leave no row behind.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.errors import ConfigError
from app.request_limits import ERR_BODY_TOO_LARGE, STREAMED_ROUTES
from app.settings import load_settings
from tests.conftest import ClientFactory

LIMIT = 4096
TOO_LARGE = ERR_BODY_TOO_LARGE.format(limit=LIMIT)


def _json_routes(client: TestClient) -> list[tuple[str, str]]:
    """Every operation of the published API that takes a JSON body."""
    found = []
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content and (method.upper(), path) not in STREAMED_ROUTES:
                found.append((method.upper(), path))
    return found


@pytest.fixture
def limited(make_client: ClientFactory) -> TestClient:
    return make_client(OPSML_MAX_JSON_BYTES=LIMIT)


def _card(uid: str, contact: str) -> bytes:
    card = {"uid": uid, "name": uid, "repository": "limits", "version": "1.0.0", "tags": {}}
    return json.dumps({"registry_type": "data", "card": {**card, "contact": contact}}).encode()


def test_every_json_route_refuses_a_declared_length_over_the_limit(limited: TestClient) -> None:
    routes = _json_routes(limited)
    assert ("POST", "/opsml/cards/create") in routes and ("PUT", "/opsml/metrics") in routes
    for method, path in routes:
        response = limited.request(
            method,
            path,
            content=b" " * (LIMIT + 1),
            headers={"content-type": "application/json"},
        )
        assert (response.status_code, response.json()["detail"]) == (413, TOO_LARGE), path


def test_a_streamed_body_is_refused_once_it_crosses_the_limit(limited: TestClient) -> None:
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(64):  # 64 x 1 KiB, no Content-Length: only counting can stop it
            sent += 1
            yield b" " * 1024

    response = limited.post(
        "/opsml/cards/list", content=chunks(), headers={"content-type": "application/json"}
    )
    assert (response.status_code, response.json()["detail"]) == (413, TOO_LARGE)


def test_a_card_over_the_limit_is_not_stored(limited: TestClient, unique: str) -> None:
    body = _card(f"big{unique}", "c" * LIMIT)
    response = limited.post(
        "/opsml/cards/create", content=body, headers={"content-type": "application/json"}
    )
    assert (response.status_code, response.json()["detail"]) == (413, TOO_LARGE)
    found = limited.post("/opsml/cards/list", json={"registry_type": "data", "uid": f"big{unique}"})
    assert found.status_code == 200 and found.json() == {"cards": []}


def test_a_body_at_the_limit_is_served(limited: TestClient, unique: str) -> None:
    body = _card(f"fit{unique}", "")
    body = body[:-2] + b" " * (LIMIT - len(body)) + body[-2:]
    assert len(body) == LIMIT
    response = limited.post(
        "/opsml/cards/create", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text


def test_uploads_keep_their_own_larger_bound(limited: TestClient, tmp_path: Path) -> None:
    data = b"u" * (LIMIT * 8)
    response = limited.post(
        "/opsml/files/upload",
        headers={"write_path": "opsml-root:/OPSML_DATA_REGISTRY/limits/big/v1.0.0/blob"},
        files={"file": ("blob", data)},
    )
    assert response.status_code == 200, response.text
    stored = tmp_path / "artifacts/OPSML_DATA_REGISTRY/limits/big/v1.0.0/blob"
    assert stored.read_bytes() == data


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OPSML_MAX_JSON_BYTES", "0"),
        ("OPSML_MAX_JSON_BYTES", "lots"),
        ("OPSML_MAX_HEADER_BYTES", "10"),
        ("OPSML_HEADER_TIMEOUT_S", "0"),
        ("OPSML_BODY_IDLE_TIMEOUT_S", "-1"),
    ],
)
def test_bad_limits_stop_start_up_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.message.startswith(variable)
