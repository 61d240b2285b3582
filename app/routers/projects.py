"""Project ids for ProjectCards."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.deps import SessionsDep
from app.schemas import ProjectIdResponse, RequiredNameStr
from app.services.projects import project_id

router = APIRouter(prefix="/opsml/projects", tags=["projects"])


@router.get("/id")
def get_project_id(
    sessions: SessionsDep,  # a new project's id is reserved: a write
    project_name: Annotated[RequiredNameStr, Query()],
    repository: Annotated[RequiredNameStr, Query()],
) -> ProjectIdResponse:
    return ProjectIdResponse(project_id=project_id(sessions, project_name, repository))
