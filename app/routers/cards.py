"""Card registry routes: /opsml/registry/table and /opsml/cards/*."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import WithJsonSchema

from app.deps import CardsDep
from app.errors import InvalidRequestError
from app.openapi import REGISTRY_TYPE_SCHEMA
from app.schemas import (
    AddCardResponse,
    CardRequest,
    DeleteCardRequest,
    DeleteCardResponse,
    ListCardRequest,
    ListCardResponse,
    NamesResponse,
    RepositoriesResponse,
    ShortStr,
    TableNameResponse,
    UidExistsRequest,
    UidExistsResponse,
    UpdateCardResponse,
    VersionRequest,
    VersionResponse,
)
from app.services.cards import CardQuery
from app.services.registries import REGISTRY_TABLES, registry_name

router = APIRouter(prefix="/opsml", tags=["cards"])

RegistryQuery = Annotated[str, Query(max_length=64), WithJsonSchema(REGISTRY_TYPE_SCHEMA)]


@router.get("/registry/table")
def registry_table(registry_type: RegistryQuery) -> TableNameResponse:
    return TableNameResponse(table_name=REGISTRY_TABLES[registry_name(registry_type)].__tablename__)


@router.post("/cards/uid")
def check_uid(payload: UidExistsRequest, cards: CardsDep) -> UidExistsResponse:
    registry = registry_name(payload.registry_type, payload.table_name)
    return UidExistsResponse(uid_exists=cards.uid_exists(registry, payload.uid))


@router.post("/cards/version")
def next_version(payload: VersionRequest, cards: CardsDep) -> VersionResponse:
    registry = registry_name(payload.registry_type, payload.table_name)
    version = cards.next_version(
        registry,
        name=payload.name,
        repository=payload.repository,
        supplied=payload.version.version if payload.version else None,
        version_type=payload.version_type,
        pre_tag=payload.pre_tag,
        build_tag=payload.build_tag,
    )
    return VersionResponse(version=version)


@router.post("/cards/list")
def list_cards(payload: ListCardRequest, cards: CardsDep) -> ListCardResponse:
    registry = registry_name(payload.registry_type, payload.table_name)
    query = CardQuery(
        uid=payload.uid,
        name=payload.name,
        repository=payload.repository,
        version=payload.version,
        max_date=payload.max_date,
        limit=payload.limit,
        tags=dict(payload.tags or {}),
        query_terms=dict(payload.query_terms or {}),
        ignore_release_candidates=payload.ignore_release_candidates,
        sort_by_timestamp=payload.sort_by_timestamp,
    )
    return ListCardResponse(cards=cards.list_cards(registry, query))


@router.post("/cards/create")
def create_card(payload: CardRequest, cards: CardsDep) -> AddCardResponse:
    cards.create(registry_name(payload.registry_type, payload.table_name), payload.card)
    return AddCardResponse(registered=True)


@router.post("/cards/update")
def update_card(payload: CardRequest, cards: CardsDep) -> UpdateCardResponse:
    cards.update(registry_name(payload.registry_type, payload.table_name), payload.card)
    return UpdateCardResponse(updated=True)


@router.post("/cards/delete")
def delete_card(payload: DeleteCardRequest, cards: CardsDep) -> DeleteCardResponse:
    registry = registry_name(payload.registry_type, payload.table_name)
    uid = payload.card.get("uid")
    if not isinstance(uid, str) or not uid:
        raise InvalidRequestError("card.uid is required to delete a card")
    return DeleteCardResponse(deleted=cards.delete(registry, uid))


@router.get("/cards/repositories")
def repositories(cards: CardsDep, registry_type: RegistryQuery) -> RepositoriesResponse:
    return RepositoriesResponse(repositories=cards.repositories(registry_name(registry_type)))


@router.get("/cards/names")
def names(
    cards: CardsDep,
    registry_type: RegistryQuery,
    repository: Annotated[ShortStr | None, Query()] = None,
) -> NamesResponse:
    return NamesResponse(names=cards.names(registry_name(registry_type), repository))
