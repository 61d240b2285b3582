"""Database trouble is a 503 with a message, never a 500: slow statements, bad URIs, locks."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from app.db import pg_options
from app.db.engine import build_engine
from app.db.failures import REASON_LOGIN, REASON_NO_ANSWER, REASON_NO_DATABASE, describe
from app.db.migrate import ERR_MIGRATION_LOCKED, MIGRATION_LOCK_ID, SCHEMA_HEAD, run_migrations
from app.errors import ConfigError, UnavailableError
from app.http_errors import ERR_DATABASE_DOWN, ERR_DATABASE_SLOW
from app.main import create_app
from app.settings import (
    ERR_SQLITE_OPTION,
    ERR_URI_HOST,
    ERR_URI_PORT,
    ERR_URI_SYNTAX,
    Settings,
    load_settings,
)
from tests.support.storage_dirs import storage_dir

SECRET = "s3cr3t-pa55"


def test_a_statement_past_the_statement_timeout_is_a_503(postgres_url: str, tmp_path: Path) -> None:
    settings = Settings(
        OPSML_TRACKING_URI=postgres_url,
        OPSML_STORAGE_URI=storage_dir(tmp_path / "s"),
        OPSML_DB_STATEMENT_TIMEOUT=1,
    )
    run_migrations(build_engine(settings))
    with TestClient(create_app(settings, login=False), raise_server_exceptions=False) as client:
        _check_slow_statements(client, postgres_url)


def _check_slow_statements(client: TestClient, postgres_url: str) -> None:
    blocker = create_engine(postgres_url)
    with blocker.connect() as holder:
        # Another session holds the table: every statement on it waits, as on a slow database.
        holder.execute(text('LOCK TABLE "OPSML_DATA_REGISTRY" IN ACCESS EXCLUSIVE MODE'))
        started = time.monotonic()
        for _ in range(3):  # the connection is still usable afterwards: same answer each time
            response = client.post("/opsml/cards/list", json={"registry_type": "data"})
            assert (response.status_code, response.json()) == (503, {"detail": ERR_DATABASE_SLOW})
        assert time.monotonic() - started < 10
        holder.rollback()
    blocker.dispose()
    assert client.post("/opsml/cards/list", json={"registry_type": "data"}).status_code == 200


def test_the_socket_timeout_outlasts_the_statement_timeout(postgres_url: str) -> None:
    # pg8000's `timeout` applies to every read: it must not cut a statement the server would
    # still let run (it used to be 5 s for everything).
    settings = Settings(OPSML_TRACKING_URI=postgres_url, OPSML_DB_STATEMENT_TIMEOUT=8)
    engine = build_engine(settings)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT pg_sleep(6), 1")).one()[1] == 1
        assert connection.execute(text("SHOW statement_timeout")).scalar() == "8s"
    engine.dispose()


def _postgres(url: str, **changes: object) -> str:
    rendered: str = make_url(url).set(**changes).render_as_string(hide_password=False)  # type: ignore[arg-type]
    return rendered


def test_a_wrong_password_and_a_missing_database_are_503_and_say_why(
    postgres_url: str, tmp_path: Path
) -> None:
    # Trust auth on the test server accepts any password, so the login case uses a role
    # that may not log in at all (28000, as a wrong password's 28P01).
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text("DROP ROLE IF EXISTS opsml_nologin"))
        connection.execute(text("CREATE ROLE opsml_nologin NOLOGIN"))
    admin.dispose()
    cases = [
        (_postgres(postgres_url, username="opsml_nologin", password=SECRET), REASON_LOGIN),
        (_postgres(postgres_url, database="opsml_no_such_db", password=SECRET), REASON_NO_DATABASE),
    ]
    for url, reason in cases:
        settings = Settings(OPSML_TRACKING_URI=url, OPSML_STORAGE_URI=storage_dir(tmp_path / "s"))
        with TestClient(create_app(settings, login=False), raise_server_exceptions=False) as app:
            response = app.post("/opsml/cards/list", json={"registry_type": "data"})
            assert (response.status_code, response.json()) == (503, {"detail": ERR_DATABASE_DOWN})
            ready = app.get("/readyz").json()["checks"]["database"]
            assert reason in ready and SECRET not in ready
        migrate = _run_migrate(url)
        assert migrate.returncode == 1
        assert migrate.stderr.count("\n") == 1 and reason in migrate.stderr, migrate.stderr
        assert SECRET not in migrate.stdout + migrate.stderr


def _run_migrate(url: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "migrate"],
        env={"OPSML_TRACKING_URI": url, "PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        (f"postgresql://opsml:p@{SECRET}@db.internal:5432/opsml", ERR_URI_HOST),
        (f"postgresql://opsml:{SECRET}@db:5432@x/opsml", ERR_URI_SYNTAX),
        (f"postgresql://opsml:{SECRET}@db:port/opsml", ERR_URI_SYNTAX),
        (f"postgresql://opsml:{SECRET}@db:99999/opsml", ERR_URI_PORT),
        (
            f"postgresql://opsml:{SECRET}@db/opsml?sslmode=sometimes",
            pg_options.ERR_SSLMODE,
        ),
        (
            f"postgresql://opsml:{SECRET}@db/opsml?sslmode=require&{SECRET}=1",
            pg_options.ERR_UNKNOWN_OPTION.format(option=SECRET),
        ),
        (
            f"postgresql://opsml:{SECRET}@db/opsml?connect_timeout=3",
            pg_options.ERR_UNKNOWN_OPTION.format(option="connect_timeout"),
        ),
        (
            f"postgresql://opsml:{SECRET}@db/opsml?sslmode=require&sslmode=disable",
            pg_options.ERR_REPEATED_OPTION.format(option="sslmode"),
        ),
        (
            f"postgresql://opsml:{SECRET}@db/opsml?sslmode=verify-full&sslrootcert=/nonexistent",
            pg_options.ERR_SSL_FILE.format(
                option="sslrootcert", reason="No such file or directory"
            ),
        ),
        (
            f"postgresql://opsml:{SECRET}@db/opsml?sslkey=/k.pem",
            pg_options.ERR_SSLKEY_ALONE,
        ),
        ("sqlite:///opsml.db?timeout=abc", ERR_SQLITE_OPTION.format(option="timeout")),
        ("sqlite:///opsml.db?sslmode=require", ERR_SQLITE_OPTION.format(option="sslmode")),
    ],
)
def test_a_bad_tracking_uri_stops_start_up_with_one_line(
    monkeypatch: pytest.MonkeyPatch, uri: str, message: str
) -> None:
    monkeypatch.setenv("OPSML_TRACKING_URI", uri)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    # The unknown-option case names the option as typed; nothing else repeats the URI.
    assert caught.value.message == message
    migrate = _run_migrate(uri)
    assert migrate.returncode == 2
    assert migrate.stderr == f"opsml-server: configuration error: {message}\n"
    if SECRET not in message:
        assert SECRET not in migrate.stderr


def test_migrate_waits_for_another_migrator_then_gives_up_in_one_line(
    tmp_path: Path,
) -> None:
    from tests.support.postgres import fresh_postgres_database

    with fresh_postgres_database("opsml_lock") as url:
        holder = create_engine(url)
        with holder.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_ID})
            # Held past the old fixed 5 s: migrate waits, and succeeds once it is released.
            unlock = text("SELECT pg_advisory_unlock_all()")
            waiting = threading.Timer(7, connection.execute, (unlock,))
            started = time.monotonic()
            waiting.start()
            ok = _run_migrate(url, OPSML_MIGRATE_TIMEOUT="60")
            waiting.join()
            assert ok.returncode == 0, ok.stderr
            assert time.monotonic() - started >= 6.5
        holder.dispose()
    # A lock that is never released: a bounded wait, then one clear line.
    with fresh_postgres_database("opsml_lock") as url:
        holder = create_engine(url)
        with holder.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_ID})
            started = time.monotonic()
            stuck = _run_migrate(url, OPSML_MIGRATE_TIMEOUT="2")
            assert 2 <= time.monotonic() - started < 30
            assert stuck.returncode == 1
            assert stuck.stderr == f"opsml-server: migration failed: {ERR_MIGRATION_LOCKED}\n"
        holder.dispose()
    sqlite = tmp_path / "opsml.db"
    lock = open(sqlite.with_name(sqlite.name + ".migrate.lock"), "w")  # noqa: SIM115
    import fcntl

    fcntl.flock(lock, fcntl.LOCK_EX)
    engine = build_engine(Settings(OPSML_TRACKING_URI=f"sqlite:///{sqlite}"))
    with pytest.raises(UnavailableError) as caught:
        run_migrations(engine, lock_timeout_s=0.5)
    assert caught.value.message == ERR_MIGRATION_LOCKED
    lock.close()
    assert run_migrations(engine, lock_timeout_s=0.5) == SCHEMA_HEAD
    engine.dispose()


def test_a_database_that_stops_answering_is_a_503_not_a_bare_socket_timeout(
    postgres_url: str, tmp_path: Path
) -> None:
    # The socket timeout (statement timeout + margin) fires when the server itself does not
    # cancel: here the session lifts its own statement_timeout. pg8000 raised the first
    # read's TimeoutError bare, which SQLAlchemy does not wrap: a 500 with a traceback.
    settings = Settings(
        OPSML_TRACKING_URI=postgres_url,
        OPSML_STORAGE_URI=storage_dir(tmp_path / "s"),
        OPSML_DB_STATEMENT_TIMEOUT=0.5,
    )
    engine = build_engine(settings)
    with engine.connect() as connection:
        connection.execute(text("SET statement_timeout = 0"))
        started = time.monotonic()
        with pytest.raises(DBAPIError) as caught:
            connection.execute(text("SELECT pg_sleep(30)"))
        assert caught.value.connection_invalidated
        assert time.monotonic() - started < 10
    with engine.connect() as connection:  # the pool recovers
        assert connection.execute(text("SELECT 1")).scalar() == 1
    engine.dispose()
    assert describe(caught.value).reason == REASON_NO_ANSWER


def test_a_sqlite_write_lock_held_too_long_is_a_503_saying_so(tmp_path: Path) -> None:
    import sqlite3

    from app.db.failures import REASON_LOCKED
    from app.http_errors import install_error_handlers

    path = tmp_path / "opsml.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN IMMEDIATE")  # the write lock, as another worker's long write
    # A busy timeout of zero stands in for the server's 30 s running out.
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
    from fastapi import FastAPI

    app = FastAPI()
    install_error_handlers(app)

    @app.post("/write")
    def write() -> None:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (1)"))

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/write")
    holder.close()
    engine.dispose()
    assert (response.status_code, response.json()) == (503, {"detail": ERR_DATABASE_SLOW})
    with pytest.raises(DBAPIError) as caught:
        second = sqlite3.connect(path, isolation_level=None)
        second.execute("BEGIN IMMEDIATE")
        engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (1)"))
    second.close()
    engine.dispose()
    assert describe(caught.value).reason == REASON_LOCKED
