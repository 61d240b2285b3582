"""The one place that builds the SQLAlchemy engine and hands out sessions."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, sessionmaker

from app.settings import Settings, sqlite_file

# pg8000 waits this long for a connection; past it the request fails fast with a 503
# instead of hanging until the client's 30 s read timeout.
_CONNECT_TIMEOUT_S = 5
# SQLite: how long a writer waits for the file lock held by another worker process.
_SQLITE_BUSY_TIMEOUT_MS = 30_000


def build_engine(settings: Settings) -> Engine:
    url = settings.database_url
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, settings)
    return create_engine(
        url,
        **_driver_args(url),
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        # No pre-ping: it costs a round trip on every request. After a database restart the
        # first request on a dead connection fails with a 503, and SQLAlchemy then drops the
        # whole pool, so the next ones reconnect.
        pool_recycle=1800,
        connect_args={"timeout": _CONNECT_TIMEOUT_S},
    )


def _driver_args(url: URL) -> dict[str, Any]:
    """pg8000 as a one-round-trip-per-statement DBAPI (app.db.pg8000_pipelined)."""
    if url.get_driver_name() != "pg8000":
        return {}
    from app.db import pg8000_pipelined

    return {"module": pg8000_pipelined}


def _sqlite_engine(url: URL, settings: Settings) -> Engine:
    path = sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        connect_args={"check_same_thread": False, "timeout": _SQLITE_BUSY_TIMEOUT_MS / 1000},
    )
    event.listen(engine, "connect", _tune_sqlite)
    return engine


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    _use_wal(cursor)
    cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _use_wal(cursor: Any) -> None:
    # WAL lets readers run while a writer commits: several gunicorn workers share one file.
    # Switching a file to WAL needs it to itself, and SQLite answers "database is locked" at
    # once instead of calling the busy handler: two workers starting on a new file met that,
    # and the one that failed took the server down. So wait here as the busy timeout would.
    # Once the file is in WAL (the mode is stored in it), this pragma is a no-op.
    deadline = time.monotonic() + _SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def build_read_engine(settings: Settings, engine: Engine) -> Engine:
    """The engine for reads: on Postgres its own pool, in autocommit for good.

    A read then costs only its SELECT: no BEGIN, and no ROLLBACK when the connection goes back
    to the pool (with the pipelined pg8000, 1 round trip instead of 3). It is a separate pool, not
    a per-checkout isolation switch, because switching back costs a round trip of its own at
    every check-in. SQLite reads are local: they share the one engine.
    """
    if engine.dialect.name != "postgresql":
        return engine
    return create_engine(
        settings.database_url,
        **_driver_args(settings.database_url),
        isolation_level="AUTOCOMMIT",
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_recycle=1800,
        connect_args={"timeout": _CONNECT_TIMEOUT_S},
    )


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits on success and rolls back on any error."""
    with factory() as session, session.begin():
        yield session
