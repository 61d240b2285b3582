"""Alembic environment: always run on a connection handed in by `app.db.migrate`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from app.db.migrate import MIGRATION_LOCK_ID, VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(connection=connection, version_table=VERSION_TABLE)

with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        # Replicas starting together queue here; the loser finds the schema at head.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_ID})
    context.run_migrations()
