"""The one place that builds the SQLAlchemy engine and hands out sessions."""

from __future__ import annotations

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
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        # No pre-ping: it costs a round trip on every request. After a database restart the
        # first request on a dead connection fails with a 503, and SQLAlchemy then drops the
        # whole pool, so the next ones reconnect.
        pool_recycle=1800,
        connect_args={"timeout": _CONNECT_TIMEOUT_S},
    )


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
    # WAL lets readers run while a writer commits: several gunicorn workers share one file.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def read_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for reads only. On Postgres they run in autocommit: each SELECT is its own
    snapshot, without the BEGIN and ROLLBACK round trips a transaction costs (a card listing
    goes from four round trips to one). SQLite reads are local and keep the default."""
    if engine.dialect.name != "postgresql":
        return session_factory(engine)
    return sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"))


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits on success and rolls back on any error."""
    with factory() as session, session.begin():
        yield session
