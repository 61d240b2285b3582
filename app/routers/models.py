"""ModelCard routes of opsml-cli and CI pipelines: metadata, metrics, comparison, registration."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.deps import ModelsDep
from app.schemas import (
    CompareMetricsRequest,
    CompareMetricsResponse,
    ModelMetadataRequest,
    ModelMetricsRequest,
    ModelMetricsResponse,
    RegisterModelRequest,
)
from app.services.models import ModelSelector

router = APIRouter(prefix="/opsml/models", tags=["models"])


@router.post("/metadata")
def model_metadata(payload: ModelMetadataRequest, models: ModelsDep) -> Any:
    # opsml-cli's documented `download-model --name X --version V` sends no repository; the
    # reference then takes the highest matching version in any repository, and so do we.
    selector = ModelSelector(
        uid=payload.uid,
        name=payload.name,
        repository=payload.repository,
        version=payload.version,
        ignore_release_candidates=payload.ignore_release_candidate,
    )
    return models.metadata(models.find(selector))


@router.post("/metrics")
def model_metrics(payload: ModelMetricsRequest, models: ModelsDep) -> ModelMetricsResponse:
    """The metrics of the run a ModelCard was trained in (clients before 2.2)."""
    selector = ModelSelector(
        uid=payload.uid, name=payload.name, repository=payload.repository, version=payload.version
    )
    return ModelMetricsResponse(metrics=models.run_metrics(models.find(selector, unique=True)))


@router.post("/compare_metrics")
def compare_metrics(payload: CompareMetricsRequest, models: ModelsDep) -> CompareMetricsResponse:
    report = models.compare(
        payload.challenger_uid, payload.champion_uid, payload.metric_name, payload.lower_is_better
    )
    return CompareMetricsResponse.model_validate(report)


@router.post("/register")
def register_model(payload: RegisterModelRequest, models: ModelsDep) -> str:
    """Copy a model to `model_registry/<repo>/<name>/v<version>/` for serving; answers that
    folder's storage URI as a JSON string, as the reference."""
    selector = ModelSelector(
        name=payload.name,
        repository=payload.repository,
        version=payload.version,
        ignore_release_candidates=payload.ignore_release_candidate,
    )
    return models.register(models.find(selector), payload.version, payload.onnx)
