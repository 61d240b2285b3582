"""Schema migrations: run explicitly (`opsml-server migrate`), or at start for SQLite only.

Our Alembic history is kept in its own version table so that it never collides with the
`alembic_version` table the reference OpsML server keeps in the same database.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from app.db.tables import Base
from app.settings import sqlite_file

VERSION_TABLE = "opsml_server_alembic_version"
# The newest revision in app/db/migrations/versions; a test keeps the two in step. Comparing
# against a constant keeps Alembic out of the start-up path when nothing needs migrating.
SCHEMA_HEAD = "0001"
# Every revision this code knows, oldest first. A revision outside this list was written by a
# newer release (a rolling upgrade migrated before this pod was replaced): still compatible,
# since migrations only add.
KNOWN_REVISIONS = ("0001",)
# Arbitrary but fixed key for pg_advisory_xact_lock.
MIGRATION_LOCK_ID = 0x0F5D_2024

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
    message = str(exc.orig).lower()
    return "no such table" in message or "does not exist" in message


def schema_is_current(engine: Engine) -> bool:
    """At our head, or ahead of it; behind or never migrated is not current."""
    revision = current_revision(engine)
    return revision is not None and (revision == SCHEMA_HEAD or revision not in KNOWN_REVISIONS)


def run_migrations(engine: Engine) -> str:
    """Upgrade to head; safe when several processes do it at once. Returns the revision.

    An empty database gets the head schema straight from `app.db.tables` and is stamped, the
    usual Alembic recipe for new databases; it keeps Alembic (~10 MB, ~0.3 s) out of a fresh
    server's start. Anything else (an OpsML 2.2.4 database to adopt, an older revision of
    ours) goes through the Alembic scripts.
    """
    if schema_is_current(engine):
        return SCHEMA_HEAD
    with _sqlite_file_lock(engine), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Replicas starting together queue here; the later ones find the schema at head.
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_ID})
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


@contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    """Serialise SQLite migrations of one file across processes (Postgres uses an advisory
    lock inside the migration transaction instead)."""
    path = sqlite_file(engine.url)
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".migrate.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
