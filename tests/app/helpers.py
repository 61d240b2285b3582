"""Small request builders shared by the API tests (the client's wire shapes)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi.testclient import TestClient


def card_record(name: str, repository: str, version: str, **extra: Any) -> dict[str, Any]:
    return {
        "uid": uuid.uuid4().hex,
        "name": name,
        "repository": repository,
        "version": version,
        "contact": "ds@example.com",
        "timestamp": time.time_ns() // 1000,
        "tags": {},
        **extra,
    }


def next_version(
    client: TestClient,
    name: str,
    repository: str,
    version_type: str = "minor",
    supplied: str | None = None,
    registry: str = "data",
) -> str:
    response = client.post(
        "/opsml/cards/version",
        json={
            "name": name,
            "repository": repository,
            "registry_type": registry,
            "version_type": version_type,
            "pre_tag": "rc",
            "build_tag": "build",
            "version": {"version": supplied} if supplied else None,
        },
    )
    assert response.status_code == 200, response.text
    version: str = response.json()["version"]
    return version


def register(
    client: TestClient,
    name: str,
    repository: str,
    version_type: str = "minor",
    supplied: str | None = None,
    registry: str = "data",
    **extra: Any,
) -> dict[str, Any]:
    """What `register_card` does: ask for a version, then create the record."""
    version = next_version(client, name, repository, version_type, supplied, registry)
    record = card_record(name, repository, version, **extra)
    response = client.post("/opsml/cards/create", json={"card": record, "registry_type": registry})
    assert response.status_code == 200, response.text
    assert response.json() == {"registered": True}
    return record


def list_cards(client: TestClient, registry: str = "data", **filters: Any) -> list[dict[str, Any]]:
    response = client.post("/opsml/cards/list", json={"registry_type": registry, **filters})
    assert response.status_code == 200, response.text
    cards: list[dict[str, Any]] = response.json()["cards"]
    return cards


def create(
    client: TestClient,
    name: str,
    repository: str,
    version: str,
    registry: str = "data",
    **extra: Any,
) -> dict[str, Any]:
    """Create a record at an exact version (as a client with a pinned version does)."""
    record = card_record(name, repository, version, **extra)
    response = client.post("/opsml/cards/create", json={"card": record, "registry_type": registry})
    assert response.status_code == 200, response.text
    return record
