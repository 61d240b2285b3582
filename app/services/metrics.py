"""Run metrics: append-only rows keyed by the RunCard uid."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import transaction
from app.db.tables import MetricRecord
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


def get_metrics(
    sessions: sessionmaker[Session], run_uid: str, names: list[str] | None, names_only: bool
) -> list[dict[str, Any]] | list[str] | None:
    """Rows (or just distinct names) for a run; None when it has none, as the reference."""
    with sessions() as session:
        if names_only:
            query = select(MetricRecord.name).where(MetricRecord.run_uid == run_uid)
            if names:
                query = query.where(MetricRecord.name.in_(names))
            found = [n for n in session.scalars(query.distinct().order_by(MetricRecord.name)) if n]
            return found or None
        rows_query = select(MetricRecord).where(MetricRecord.run_uid == run_uid)
        if names:
            rows_query = rows_query.where(MetricRecord.name.in_(names))
        ordered = rows_query.order_by(MetricRecord.idx)
        rows = [records.to_dict(r) for r in session.scalars(ordered)]
        return rows or None
