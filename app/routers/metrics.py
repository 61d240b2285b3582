"""Run metrics: PUT to append, POST (the client) or GET (opsml-cli) to read."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.deps import ReadSessionsDep, SessionsDep
from app.schemas import (
    GetMetricsRequest,
    MetricsResponse,
    PutMetricsRequest,
    ShortStr,
    SuccessResponse,
)
from app.services import metrics

router = APIRouter(prefix="/opsml", tags=["metrics"])


@router.put("/metrics")
def put_metrics(payload: PutMetricsRequest, sessions: SessionsDep) -> SuccessResponse:
    metrics.insert_metrics(sessions, [m.model_dump(exclude_none=True) for m in payload.metric])
    return SuccessResponse(complete=True)


@router.post("/metrics")
def post_metrics(payload: GetMetricsRequest, sessions: ReadSessionsDep) -> MetricsResponse:
    found = metrics.get_metrics(sessions, payload.run_uid, payload.name, payload.names_only)
    return MetricsResponse(metric=found)


@router.get("/metrics")
def get_metrics(
    sessions: ReadSessionsDep,
    run_uid: Annotated[ShortStr, Query()],
    name: Annotated[list[ShortStr] | None, Query(max_length=1000)] = None,
    names_only: bool = False,
) -> MetricsResponse:
    """What `opsml-cli get-model-metrics` sends (the reference server answered 405); `run_uid`
    may also be a ModelCard's uid, and no metrics is an empty list."""
    return MetricsResponse(metric=metrics.metrics_of_card(sessions, run_uid, name, names_only))
