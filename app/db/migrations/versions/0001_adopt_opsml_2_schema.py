"""Create the OpsML 2.x tables, or adopt an existing OpsML 2.2.4 database.

Adoption is additive only: existing tables and rows are left alone, missing columns are added,
and lookup indexes plus our version-claims table are created. Nothing is dropped or rewritten,
so the reference server can still use the same database afterwards.

This first revision reads the table definitions from `app.db.tables`, which mirror the 2.2.4
schema exactly; later revisions must describe their own changes instead.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.db.tables import Base, VersionClaim

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    existing = set(sa.inspect(bind).get_table_names())
    for table in Base.metadata.sorted_tables:
        if table.name not in existing:
            table.create(bind)  # with its indexes
            continue
        inspector = sa.inspect(bind)
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in present and not column.primary_key:
                op.add_column(table.name, column._copy())
        indexed = {index["name"] for index in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexed:
                index.create(bind)


def downgrade() -> None:
    # Only what this revision added that the reference schema lacks; never the card tables.
    for table in Base.metadata.sorted_tables:
        if table.name == VersionClaim.__tablename__:
            continue
        for index in table.indexes:
            index.drop(op.get_bind())
    op.drop_table(VersionClaim.__tablename__)
