"""Project ids: stable per (name, repository), next free integer for a new project."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.db.tables import ProjectRecord
from app.services.records import clean_name


def project_id(sessions: sessionmaker[Session], name: str, repository: str) -> int:
    with sessions() as session:
        existing = session.scalar(
            select(ProjectRecord.project_id)
            .where(
                ProjectRecord.name == clean_name(name),
                ProjectRecord.repository == clean_name(repository),
            )
            .limit(1)
        )
        if existing is not None:
            return int(existing)
        highest = session.scalar(select(func.max(ProjectRecord.project_id)))
        return int(highest or 0) + 1
