"""Project ids: stable per (name, repository), next free integer for a new project.

A new project's id is reserved when it is handed out (a row in the version-claims table, kind
`project-id`, the id in `version`), so two clients asking at the same moment for two new
projects get two ids; before, both got max+1 and the second ProjectCard create was a 409.
"""

from __future__ import annotations

import time

from sqlalchemy import Integer, cast, func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import transaction
from app.db.tables import ProjectRecord, VersionClaim
from app.errors import UnavailableError
from app.services.records import clean_name

ID_CLAIM = "project-id"
_ATTEMPTS = 20
ERR_PROJECT_ID_BUSY = "Too many projects are being created at once; try again"


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
    for _ in range(_ATTEMPTS):
        try:
            with transaction(sessions) as session:
                taken = session.scalar(select(func.max(ProjectRecord.project_id))) or 0
                claimed = session.scalar(
                    select(func.max(cast(VersionClaim.version, Integer))).where(
                        VersionClaim.registry_type == ID_CLAIM
                    )
                )
                new_id = max(int(taken), int(claimed or 0)) + 1
                session.add(
                    VersionClaim(
                        registry_type=ID_CLAIM,
                        name="",
                        repository="",
                        version=str(new_id),
                        uid=None,
                        claimed_at=time.time_ns() // 1000,
                    )
                )
            return new_id
        except IntegrityError:
            continue  # another caller reserved this id a moment ago
        except OperationalError as exc:
            if "locked" not in str(exc.orig).lower():
                raise
    raise UnavailableError(ERR_PROJECT_ID_BUSY)
