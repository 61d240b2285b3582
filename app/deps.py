"""Request dependencies as `Annotated` aliases; tests swap them via `dependency_overrides`.

They are `async def` although they only read `app.state`: FastAPI runs a plain `def`
dependency in the threadpool, a thread hop on every request for an attribute read.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.services.cards import CardService
from app.services.models import ModelService
from app.settings import Settings
from app.storage.store import ArtifactStore


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def get_sessions(request: Request) -> sessionmaker[Session]:
    sessions: sessionmaker[Session] = request.app.state.sessions
    return sessions


async def get_read_sessions(request: Request) -> sessionmaker[Session]:
    reads: sessionmaker[Session] = request.app.state.reads
    return reads


async def get_card_service(request: Request) -> CardService:
    cards: CardService = request.app.state.cards
    return cards


async def get_store(request: Request) -> ArtifactStore:
    store: ArtifactStore = request.app.state.store
    return store


async def get_model_service(request: Request) -> ModelService:
    state = request.app.state
    return ModelService(state.cards, state.reads, state.store)


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
EngineDep = Annotated[Engine, Depends(get_engine)]
SessionsDep = Annotated[sessionmaker[Session], Depends(get_sessions)]
ReadSessionsDep = Annotated[sessionmaker[Session], Depends(get_read_sessions)]
CardsDep = Annotated[CardService, Depends(get_card_service)]
StoreDep = Annotated[ArtifactStore, Depends(get_store)]
ModelsDep = Annotated[ModelService, Depends(get_model_service)]
