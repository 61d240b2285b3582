"""Let the columns that OpsML 2.2.4 leaves nullable accept NULL again.

Databases this server created under SQLAlchemy 2.1 (before `app.db.tables` spelled out the
nullability) have `tags` and the JSON link columns NOT NULL, unlike 2.2.4: a card created
without them failed. Only such columns change; a database created right, or adopted from the
reference server, is left as it is. SQLite cannot drop NOT NULL in place, so Alembic's batch
mode copies that table (rows, indexes and all) into the corrected one.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


# The JSON columns of 2.2.4's card tables, all nullable there.
JSON_COLUMNS = {
    "OPSML_DATA_REGISTRY": ("tags",),
    "OPSML_MODEL_REGISTRY": ("tags",),
    "OPSML_RUN_REGISTRY": ("tags", "datacard_uids", "modelcard_uids", "artifact_uris"),
    "OPSML_PIPELINE_REGISTRY": ("tags", "datacard_uids", "modelcard_uids", "runcard_uids"),
    "OPSML_AUDIT_REGISTRY": ("tags", "datacard_uids", "modelcard_uids", "runcard_uids"),
}


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    existing = set(inspector.get_table_names())
    for table, names in JSON_COLUMNS.items():
        if table not in existing:
            continue
        stored = {column["name"]: column for column in inspector.get_columns(table)}
        relax = [name for name in names if name in stored and not stored[name]["nullable"]]
        if not relax:
            continue
        with op.batch_alter_table(table) as batch:
            for name in relax:
                batch.alter_column(name, existing_type=sa.JSON(), nullable=True)


def downgrade() -> None:
    # Nothing to undo: 2.2.4's own schema has these columns nullable.
    pass
