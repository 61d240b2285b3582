"""Model metadata (used by opsml-cli): the model-metadata.json of a registered ModelCard."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter

from app.db.tables import ModelCardRecord
from app.deps import CardsDep, StoreDep
from app.errors import InvalidRequestError, NotFoundError
from app.schemas import ModelMetadataRequest
from app.services.cards import CardQuery

router = APIRouter(prefix="/opsml/models", tags=["models"])

METADATA_LIMIT = 16 * 1024 * 1024
ERR_NO_SELECTOR = "Send a uid, or a name and repository, to choose the model"
ERR_NO_MODEL = "No model card matches the request"
ERR_BAD_METADATA = "The model's model-metadata.json is not valid JSON"


@router.post("/metadata")
def model_metadata(payload: ModelMetadataRequest, cards: CardsDep, store: StoreDep) -> Any:
    if not payload.uid and not (payload.name and payload.repository):
        raise InvalidRequestError(ERR_NO_SELECTOR)
    found = cards.list_cards(
        "model",
        CardQuery(
            uid=payload.uid,
            name=payload.name,
            repository=payload.repository,
            version=payload.version,
            ignore_release_candidates=payload.ignore_release_candidate,
        ),
    )
    if not found:
        raise NotFoundError(ERR_NO_MODEL)
    card = found[0]
    path = (
        f"opsml-root:/{ModelCardRecord.__tablename__}/{card['repository']}/{card['name']}"
        f"/v{card['version']}/model-metadata.json"
    )
    try:
        return json.loads(store.read_bytes(path, METADATA_LIMIT))
    except ValueError as exc:
        raise NotFoundError(ERR_BAD_METADATA) from exc
