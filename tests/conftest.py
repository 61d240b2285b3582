"""Shared fixtures: a fresh database per backend (SQLite file, real Postgres) and app clients.

Postgres is the machine's server on 127.0.0.1:5432 (or OPSML_TEST_POSTGRES_URL); each test
session gets its own database, dropped at the end. A Postgres that cannot be reached is an
error, never a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.db.engine import build_engine
from app.db.migrate import run_migrations
from app.main import create_app
from app.settings import Settings

pytest_plugins = ["tests.support.emulators"]

POSTGRES_ADMIN_URL = os.environ.get(
    "OPSML_TEST_POSTGRES_URL", "postgresql+pg8000://postgres@127.0.0.1:5432/postgres"
)


def _admin_engine() -> Any:
    # DDL on its own AUTOCOMMIT engine: CREATE DATABASE cannot run inside a transaction.
    return create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")


@contextmanager
def fresh_postgres_database(prefix: str = "opsml_test") -> Iterator[str]:
    """A new, empty Postgres database for the block; dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine()
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_ADMIN_URL).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


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
