"""Typed tables, byte-compatible with the OpsML 2.2.4 schema.

Table and column names, types and keys are exactly those the reference server creates, so this
server can be pointed at an existing OpsML database (and the reference server at ours). Python
attribute names are what `cards/list` returns, as the reference does: note the audit table,
whose attributes `datacards`/`modelcards`/`runcards` live in `*_uids` columns, and the metrics
table, whose `run_uid` attribute lives in the `uid` column.

`VersionClaim` and the `ix_opsml_server_*` indexes are ours alone: the claims make concurrent
`cards/version` calls hand out distinct versions (see `app.services.cards`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, Boolean, Float, Index, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column


class Base(DeclarativeBase):
    pass


# Nullability is spelled out on every `Mapped[Any]` (JSON) column: SQLAlchemy 2.0 read `Any`
# as nullable, 2.1 as NOT NULL, and 2.2.4's JSON columns accept NULL (a card created without
# `tags` or `datacard_uids` must be stored, not refused).
_SHARED = -1  # sort_order of the columns every card table shares


class CardRecord(Base):
    """Columns every card registry shares; concrete tables below."""

    __abstract__ = True
    registry_type: ClassVar[str]

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Index, ...]:
        # Ours, not the reference's: every list and version lookup filters on these two.
        name = f"ix_opsml_server_{cls.__tablename__.lower()}_name_repo"
        return (Index(name, "name", "repository"),)

    # The shared columns come first, as in 2.2.4: SQLAlchemy 2.1 would otherwise put a
    # subclass's own columns before those of its abstract base.
    uid: Mapped[str] = mapped_column(String(64), primary_key=True, sort_order=_SHARED)
    date: Mapped[str | None] = mapped_column(String(32), sort_order=_SHARED)
    timestamp: Mapped[int | None] = mapped_column(BigInteger, sort_order=_SHARED)
    app_env: Mapped[str | None] = mapped_column(String(32), sort_order=_SHARED)
    name: Mapped[str | None] = mapped_column(String(128), sort_order=_SHARED)
    repository: Mapped[str | None] = mapped_column(String(128), sort_order=_SHARED)
    version: Mapped[str] = mapped_column(String(64), nullable=False, sort_order=_SHARED)
    contact: Mapped[str | None] = mapped_column(String(64), sort_order=_SHARED)
    tags: Mapped[Any] = mapped_column(JSON, nullable=True, sort_order=_SHARED)


class DataCardRecord(CardRecord):
    __tablename__ = "OPSML_DATA_REGISTRY"
    registry_type = "data"

    data_type: Mapped[str | None] = mapped_column(String(64))
    runcard_uid: Mapped[str | None] = mapped_column(String(64))
    pipelinecard_uid: Mapped[str | None] = mapped_column(String(64))
    auditcard_uid: Mapped[str | None] = mapped_column(String(64))


class ModelCardRecord(CardRecord):
    __tablename__ = "OPSML_MODEL_REGISTRY"
    registry_type = "model"

    datacard_uid: Mapped[str | None] = mapped_column(String(64))
    sample_data_type: Mapped[str | None] = mapped_column(String(64))
    model_type: Mapped[str | None] = mapped_column(String(64))
    runcard_uid: Mapped[str | None] = mapped_column(String(64))
    pipelinecard_uid: Mapped[str | None] = mapped_column(String(64))
    auditcard_uid: Mapped[str | None] = mapped_column(String(64))


class RunCardRecord(CardRecord):
    __tablename__ = "OPSML_RUN_REGISTRY"
    registry_type = "run"

    datacard_uids: Mapped[Any] = mapped_column(JSON, nullable=True)
    modelcard_uids: Mapped[Any] = mapped_column(JSON, nullable=True)
    pipelinecard_uid: Mapped[str | None] = mapped_column(String(64))
    project: Mapped[str | None] = mapped_column(String(64))
    artifact_uris: Mapped[Any] = mapped_column(JSON, nullable=True)


class PipelineCardRecord(CardRecord):
    __tablename__ = "OPSML_PIPELINE_REGISTRY"
    registry_type = "pipeline"

    pipeline_code_uri: Mapped[str | None] = mapped_column(String(256))
    datacard_uids: Mapped[Any] = mapped_column(JSON, nullable=True)
    modelcard_uids: Mapped[Any] = mapped_column(JSON, nullable=True)
    runcard_uids: Mapped[Any] = mapped_column(JSON, nullable=True)


class AuditCardRecord(CardRecord):
    __tablename__ = "OPSML_AUDIT_REGISTRY"
    registry_type = "audit"

    approved: Mapped[bool | None] = mapped_column(Boolean)
    datacards: Mapped[Any] = mapped_column("datacard_uids", JSON, nullable=True)
    modelcards: Mapped[Any] = mapped_column("modelcard_uids", JSON, nullable=True)
    runcards: Mapped[Any] = mapped_column("runcard_uids", JSON, nullable=True)


class ProjectRecord(Base):
    __tablename__ = "OPSML_PROJECT_REGISTRY"
    registry_type: ClassVar[str] = "project"

    uid: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(128))
    repository: Mapped[str | None] = mapped_column(String(128))
    project_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(64), nullable=False)
    timestamp: Mapped[int | None] = mapped_column(BigInteger)


class MetricRecord(Base):
    __tablename__ = "OPSML_RUN_METRICS"
    __table_args__ = (Index("ix_opsml_server_run_metrics_uid", "uid"),)

    run_uid: Mapped[str | None] = mapped_column("uid", String(64))
    name: Mapped[str | None] = mapped_column(String(128))
    value: Mapped[float | None] = mapped_column(Float)
    step: Mapped[int | None] = mapped_column(Integer)
    timestamp: Mapped[int | None] = mapped_column(BigInteger)
    date_ts: Mapped[str | None] = mapped_column(String(64))
    idx: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)


class VersionClaim(Base):
    """A version handed out by `cards/version` (uid NULL) or taken by a card (uid set)."""

    __tablename__ = "OPSML_SERVER_VERSION_CLAIMS"

    registry_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    repository: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    uid: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[int] = mapped_column(BigInteger, nullable=False)


CARD_TABLES: dict[str, type[CardRecord]] = {
    table.registry_type: table
    for table in (
        DataCardRecord,
        ModelCardRecord,
        RunCardRecord,
        PipelineCardRecord,
        AuditCardRecord,
    )
}
