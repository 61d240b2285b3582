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

from app.db.pg_options import parse_options
from app.settings import Settings, sqlite_file

# pg8000's socket timeout covers every read, not only connecting. Once connected, it is set to
# the statement timeout plus this: Postgres cancels a slow statement itself (a clear 57014),
# and the socket timeout is left for a database that does not answer at all (frozen host).
_READ_TIMEOUT_MARGIN_S = 5
# SQLite: how long a writer waits for the file lock held by another worker process.
_SQLITE_BUSY_TIMEOUT_MS = 30_000


def build_engine(settings: Settings, *, statement_timeout_s: float | None = None) -> Engine:
    """The write engine; `statement_timeout_s` overrides the setting (migrations)."""
    url = settings.database_url
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, settings)
    return _postgres_engine(settings, statement_timeout_s)


def _postgres_engine(
    settings: Settings, statement_timeout_s: float | None, **engine_args: Any
) -> Engine:
    url = settings.database_url
    limit = settings.db_statement_timeout if statement_timeout_s is None else statement_timeout_s
    engine = create_engine(
        # The query holds libpq-style options pg8000 does not take: they become arguments.
        url.set(query={}),
        **_driver_args(url),
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout,
        # No pre-ping: it costs a round trip on every request. After a database restart the
        # first request on a dead connection fails with a 503, and SQLAlchemy then drops the
        # whole pool, so the next ones reconnect.
        pool_recycle=1800,
        connect_args={
            "timeout": settings.db_connect_timeout,
            **parse_options(url.query).connect_args(),
        },
        **engine_args,
    )
    event.listen(engine, "connect", _statement_timeout(limit))
    return engine


def _statement_timeout(limit_s: float) -> Any:
    def limit(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # Enforced by the server, per connection: one round trip per new connection only.
        cursor.execute(f"SET statement_timeout = {max(1, round(limit_s * 1000))}")
        cursor.close()
        if not dbapi_connection.autocommit:
            dbapi_connection.commit()  # a SET in a transaction that rolls back is undone
        sock = getattr(dbapi_connection, "_usock", None)  # pg8000's socket
        if sock is not None:
            sock.settimeout(limit_s + _READ_TIMEOUT_MARGIN_S)

    return limit


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
    return _postgres_engine(settings, None, isolation_level="AUTOCOMMIT")


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits on success and rolls back on any error."""
    with factory() as session, session.begin():
        yield session
