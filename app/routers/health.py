"""Probes: liveness touches nothing; readiness checks database, schema and storage."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from app.db.failures import describe
from app.db.migrate import schema_is_current
from app.deps import EngineDep, StoreDep
from app.errors import OpsmlServerError
from app.observability import metrics_text
from app.schemas import HealthCheckResponse, ReadinessResponse

router = APIRouter(tags=["health"])


@router.get("/livez")
async def livez() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/opsml/healthcheck")
async def healthcheck() -> HealthCheckResponse:
    return HealthCheckResponse(is_alive=True)


def _check_database(engine: Any) -> str:
    try:
        return (
            "ok" if schema_is_current(engine) else "schema not migrated: run opsml-server migrate"
        )
    except Exception as exc:
        return f"unreachable: {describe(exc).reason} ({type(exc).__name__})"


def _check_storage(store: Any) -> str:
    try:
        store.check_reachable()
    except OpsmlServerError as exc:
        return exc.message
    except Exception as exc:
        return f"unreachable ({type(exc).__name__})"
    return "ok"


@router.get(
    "/readyz",
    responses={
        200: {"model": ReadinessResponse},
        503: {"model": ReadinessResponse, "description": "A check failed; `checks` says which"},
    },
)
async def readyz(engine: EngineDep, store: StoreDep) -> JSONResponse:
    checks = {
        "database": await run_in_threadpool(_check_database, engine),
        "storage": await run_in_threadpool(_check_storage, store),
    }
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", include_in_schema=False)
def prometheus_metrics() -> Response:
    return Response(metrics_text(), media_type="text/plain; version=0.0.4; charset=utf-8")
