"""Schema migrations: run explicitly (`opsml-server migrate`), or at start for SQLite only.

Our Alembic history is kept in its own version table so that it never collides with the
`alembic_version` table the reference OpsML server keeps in the same database.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from app.db.failures import sqlstate
from app.db.tables import Base
from app.errors import UnavailableError
from app.settings import sqlite_file

VERSION_TABLE = "opsml_server_alembic_version"
# The newest revision in app/db/migrations/versions; a test keeps the two in step. Comparing
# against a constant keeps Alembic out of the start-up path when nothing needs migrating.
SCHEMA_HEAD = "0002"
# Every revision this code knows, oldest first. A revision outside this list was written by a
# newer release (a rolling upgrade migrated before this pod was replaced): still compatible,
# since migrations only add.
KNOWN_REVISIONS = ("0001", "0002")
# Arbitrary but fixed key for pg_advisory_xact_lock.
MIGRATION_LOCK_ID = 0x0F5D_2024

DEFAULT_LOCK_TIMEOUT_S = 600.0
_LOCK_POLL_S = 0.25
ERR_MIGRATION_LOCKED = (
    "another opsml-server migrate still holds the migration lock after OPSML_MIGRATE_TIMEOUT "
    "seconds; let it finish (or stop it) and run migrate again"
)

_MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None when we never migrated it."""
    try:
        with engine.connect() as connection:
            row = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).first()
    except DBAPIError as exc:
        if _is_missing_table(exc):
            return None
        raise
    return None if row is None else str(row[0])


def _is_missing_table(exc: DBAPIError) -> bool:
    # 42P01 is Postgres's undefined_table; a missing *database* (3D000) is not "unmigrated".
    return sqlstate(exc) == "42P01" or "no such table" in str(exc.orig).lower()


def schema_is_current(engine: Engine) -> bool:
    """At our head, or ahead of it; behind or never migrated is not current."""
    revision = current_revision(engine)
    return revision is not None and (revision == SCHEMA_HEAD or revision not in KNOWN_REVISIONS)


def run_migrations(engine: Engine, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> str:
    """Upgrade to head; safe when several processes do it at once. Returns the revision.

    An empty database gets the head schema straight from `app.db.tables` and is stamped, the
    usual Alembic recipe for new databases; it keeps Alembic (~10 MB, ~0.3 s) out of a fresh
    server's start. Anything else (an OpsML 2.2.4 database to adopt, an older revision of
    ours) goes through the Alembic scripts. Another migrator holding the lock is waited for
    up to `lock_timeout_s`, then `UnavailableError`.
    """
    if schema_is_current(engine):
        return SCHEMA_HEAD
    deadline = time.monotonic() + lock_timeout_s
    with _sqlite_file_lock(engine, deadline), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Replicas starting together queue here; the later ones find the schema at head.
            _advisory_lock(connection, deadline)
        tables = set(inspect(connection).get_table_names())
        if VERSION_TABLE in tables:
            revision = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
            if revision == SCHEMA_HEAD:
                return SCHEMA_HEAD
        if not tables:
            Base.metadata.create_all(connection)
            _stamp(connection, SCHEMA_HEAD)
        else:
            _alembic_upgrade(connection)
    return SCHEMA_HEAD


def _stamp(connection: Connection, revision: str) -> None:
    connection.execute(
        text(
            f"CREATE TABLE {VERSION_TABLE} (version_num VARCHAR(32) NOT NULL, "
            f"CONSTRAINT {VERSION_TABLE}_pkc PRIMARY KEY (version_num))"
        )
    )
    connection.execute(
        text(f"INSERT INTO {VERSION_TABLE} (version_num) VALUES (:r)"), {"r": revision}
    )


def _alembic_upgrade(connection: Connection) -> None:
    from alembic import command  # imported here: only needed when there is work to do
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _advisory_lock(connection: Connection, deadline: float) -> None:
    # Polled rather than waited for in one statement: a single wait would run into the
    # statement timeout and the driver's socket timeout, which are much shorter.
    lock = text("SELECT pg_try_advisory_xact_lock(:k)")
    while not connection.execute(lock, {"k": MIGRATION_LOCK_ID}).scalar():
        _wait_or_give_up(deadline)


def _wait_or_give_up(deadline: float) -> None:
    if time.monotonic() >= deadline:
        raise UnavailableError(ERR_MIGRATION_LOCKED)
    time.sleep(_LOCK_POLL_S)


@contextmanager
def _sqlite_file_lock(engine: Engine, deadline: float) -> Iterator[None]:
    """Serialise SQLite migrations of one file across processes (Postgres uses an advisory
    lock inside the migration transaction instead)."""
    path = sqlite_file(engine.url)
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".migrate.lock"), "w") as lock:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                _wait_or_give_up(deadline)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
