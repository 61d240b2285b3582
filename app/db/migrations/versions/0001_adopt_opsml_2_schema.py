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

from app.db.tables import CARD_TABLES, Base, MetricRecord, VersionClaim

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _lookup_indexes() -> list[tuple[str, str, list[str]]]:
    indexes = [
        (
            f"ix_opsml_server_{table.__tablename__.lower()}_name_repo",
            table.__tablename__,
            ["name", "repository"],
        )
        for table in CARD_TABLES.values()
    ]
    indexes.append(("ix_opsml_server_run_metrics_uid", MetricRecord.__tablename__, ["uid"]))
    return indexes


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    existing = set(inspector.get_table_names())
    for table in Base.metadata.sorted_tables:
        if table.name not in existing:
            table.create(bind)
            continue
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in present and not column.primary_key:
                op.add_column(table.name, column._copy())
    for index_name, table_name, columns in _lookup_indexes():
        have = {index["name"] for index in sa.inspect(bind).get_indexes(table_name)}
        if index_name not in have:
            op.create_index(index_name, table_name, columns)
    assert VersionClaim.__tablename__ in sa.inspect(bind).get_table_names()


def downgrade() -> None:
    # Only what this revision added that the reference schema lacks; never the card tables.
    for index_name, table_name, _ in _lookup_indexes():
        op.drop_index(index_name, table_name=table_name)
    op.drop_table(VersionClaim.__tablename__)
