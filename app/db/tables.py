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


class CardRecord(Base):
    """Columns every card registry shares; concrete tables below."""

    __abstract__ = True
    registry_type: ClassVar[str]

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Index, ...]:
        # Ours, not the reference's: every list and version lookup filters on these two.
        name = f"ix_opsml_server_{cls.__tablename__.lower()}_name_repo"
        return (Index(name, "name", "repository"),)

    uid: Mapped[str] = mapped_column(String(64), primary_key=True)
    date: Mapped[str | None] = mapped_column(String(32))
    timestamp: Mapped[int | None] = mapped_column(BigInteger)
    app_env: Mapped[str | None] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(String(128))
    repository: Mapped[str | None] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(64), nullable=False)
    contact: Mapped[str | None] = mapped_column(String(64))
    tags: Mapped[Any] = mapped_column(JSON)


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

    datacard_uids: Mapped[Any] = mapped_column(JSON)
    modelcard_uids: Mapped[Any] = mapped_column(JSON)
    pipelinecard_uid: Mapped[str | None] = mapped_column(String(64))
    project: Mapped[str | None] = mapped_column(String(64))
    artifact_uris: Mapped[Any] = mapped_column(JSON)


class PipelineCardRecord(CardRecord):
    __tablename__ = "OPSML_PIPELINE_REGISTRY"
    registry_type = "pipeline"

    pipeline_code_uri: Mapped[str | None] = mapped_column(String(256))
    datacard_uids: Mapped[Any] = mapped_column(JSON)
    modelcard_uids: Mapped[Any] = mapped_column(JSON)
    runcard_uids: Mapped[Any] = mapped_column(JSON)


class AuditCardRecord(CardRecord):
    __tablename__ = "OPSML_AUDIT_REGISTRY"
    registry_type = "audit"

    approved: Mapped[bool | None] = mapped_column(Boolean)
    datacards: Mapped[Any] = mapped_column("datacard_uids", JSON)
    modelcards: Mapped[Any] = mapped_column("modelcard_uids", JSON)
    runcards: Mapped[Any] = mapped_column("runcard_uids", JSON)


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
