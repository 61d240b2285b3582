"""Run metrics: append-only rows keyed by the RunCard uid."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import transaction
from app.db.tables import MetricRecord, ModelCardRecord
from app.services import records

MAX_METRICS_PER_REQUEST = 10_000


def insert_metrics(sessions: sessionmaker[Session], metrics: list[dict[str, Any]]) -> int:
    rows = []
    for metric in metrics:
        records.validate_record(MetricRecord, metric, "metric")
        records.require(metric, "run_uid", "name", "value")
        rows.append(MetricRecord(**{"date_ts": str(datetime.now()), **metric}))
    with transaction(sessions) as session:
        session.add_all(rows)
    return len(rows)


def _find(
    session: Session, run_uid: str, names: list[str] | None, names_only: bool
) -> list[dict[str, Any]] | list[str]:
    if names_only:
        query = select(MetricRecord.name).where(MetricRecord.run_uid == run_uid)
        if names:
            query = query.where(MetricRecord.name.in_(names))
        return [n for n in session.scalars(query.distinct().order_by(MetricRecord.name)) if n]
    rows_query = select(MetricRecord).where(MetricRecord.run_uid == run_uid)
    if names:
        rows_query = rows_query.where(MetricRecord.name.in_(names))
    return [records.to_dict(r) for r in session.scalars(rows_query.order_by(MetricRecord.idx))]


def get_metrics(
    sessions: sessionmaker[Session], run_uid: str, names: list[str] | None, names_only: bool
) -> list[dict[str, Any]] | list[str] | None:
    """Rows (or just distinct names) for a run; None when it has none, as the reference: the
    Python client's RunCard.get_metric tells "no such metric" by that None."""
    with sessions() as session:
        return _find(session, run_uid, names, names_only) or None


def metrics_of_card(
    sessions: sessionmaker[Session], uid: str, names: list[str] | None, names_only: bool
) -> list[dict[str, Any]] | list[str]:
    """What `opsml-cli get-model-metrics --uid` shows (its help says "Card uid"): the metrics of
    a run, or of the run a ModelCard was trained in; an empty list, never the None the CLI
    cannot parse."""
    with sessions() as session:
        found = _find(session, uid, names, names_only)
        if found:
            return found
        run_uid = session.scalar(
            select(ModelCardRecord.runcard_uid).where(ModelCardRecord.uid == uid)
        )
        return _find(session, run_uid, names, names_only) if run_uid else []


def run_metric_rows(
    sessions: sessionmaker[Session], run_uid: str, names: list[str] | None
) -> list[dict[str, Any]]:
    """A run's metric rows in logged order (empty when it has none)."""
    with sessions() as session:
        rows = _find(session, run_uid, names, False)
    return rows  # type: ignore[return-value]  # names_only=False gives rows
