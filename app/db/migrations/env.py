"""Alembic environment: always run on a connection handed in by `app.db.migrate`."""

from __future__ import annotations

from alembic import context

from app.db.migrate import VERSION_TABLE

# `app.db.migrate` hands in a connection that already holds the migration lock and an open
# transaction; Alembic joins that transaction.
connection = context.config.attributes["connection"]
context.configure(connection=connection, version_table=VERSION_TABLE)

with context.begin_transaction():
    context.run_migrations()
