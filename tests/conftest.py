"""Shared fixtures: a fresh database per backend (SQLite file, real Postgres) and app clients.

Postgres is the machine's server on 127.0.0.1:5432 (or OPSML_TEST_POSTGRES_URL); each test
session gets its own database, dropped at the end. A Postgres that cannot be reached is an
error, never a skip.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.db.engine import build_engine
from app.db.migrate import run_migrations
from app.main import create_app
from app.settings import Settings
from tests.support.postgres import fresh_postgres_database

pytest_plugins = ["tests.support.emulators"]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'opsml.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(database_url: str, tmp_path: Path) -> SettingsFactory:
    def factory(**overrides: Any) -> Settings:
        # A configured local root must exist (only the embedded default is created).
        (tmp_path / "artifacts").mkdir(exist_ok=True)
        values: dict[str, Any] = {
            "OPSML_TRACKING_URI": database_url,
            "OPSML_STORAGE_URI": str(tmp_path / "artifacts"),
        }
        values.update(overrides)
        return Settings(**values)

    return factory


ClientFactory = Callable[..., TestClient]


@pytest.fixture
def make_client(make_settings: SettingsFactory) -> Iterator[ClientFactory]:
    clients: list[TestClient] = []

    def factory(login: bool = False, **overrides: Any) -> TestClient:
        settings = make_settings(**overrides)
        engine = build_engine(settings)
        run_migrations(engine)
        engine.dispose()
        client = TestClient(create_app(settings, login=login), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: ClientFactory) -> TestClient:
    return make_client()


@pytest.fixture
def unique() -> str:
    """A name part no other test uses (tests share the session's Postgres database)."""
    return uuid.uuid4().hex[:10]
