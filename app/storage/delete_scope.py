"""What a delete may remove: one card version's folder, or something inside it.

OpsML 2.x clients delete exactly two kinds of path: a card's folder when the card is deleted
(`opsml-root:/<TABLE>/<repository>/<name>/v<version>`) and files below it. Anything higher
up (the root, a registry's folder, a repository or a card name with all its versions) is
refused, because one request would otherwise take every card under it. The check runs on
the normalised segments (`paths.relative_parts`), so trailing slashes, `.` segments and
double slashes cannot turn a deep path into a shallow one; table names must match exactly,
as the clients write them, so `opsml_data_registry` (a different folder on a case-sensitive
disk, the same one on a case-insensitive bucket or disk) is refused too.
"""

from __future__ import annotations

import re
from typing import Final

from app.errors import InvalidPathError

# The folders the clients write into: one per registry table (app/db/tables.py; a test keeps
# the two lists equal).
REGISTRY_FOLDERS: Final = frozenset(
    {
        "OPSML_DATA_REGISTRY",
        "OPSML_MODEL_REGISTRY",
        "OPSML_RUN_REGISTRY",
        "OPSML_PIPELINE_REGISTRY",
        "OPSML_AUDIT_REGISTRY",
        "OPSML_PROJECT_REGISTRY",
    }
)
# `models/register` keeps a served copy of a model in <this>/<repository>/<name>/v<major...>
# (app.services.models.REGISTRY_DIR) and replaces it on every register: same shape, deletable.
SERVING_FOLDER: Final = "model_registry"
# <TABLE>/<repository>/<name>/v<version>: the version folder is the fourth segment.
_VERSION_DEPTH: Final = 4
# `v` and a version as the clients write it: 1.2.0, 1.0.0-rc.1+build.1, 2.1 of legacy data.
_VERSION_FOLDER: Final = re.compile(r"v[0-9]+(\.[0-9A-Za-z]+)*([-+][0-9A-Za-z.+-]*)?")

ERR_DELETE_SCOPE: Final = (
    "Refusing to delete {path}: a delete may remove one card version's folder "
    "(opsml-root:/<TABLE>/<repository>/<name>/v<version>) or files inside it, never the "
    "storage root, a registry, a repository or all versions of a card"
)
ERR_DELETE_TABLE: Final = (
    "Refusing to delete {path}: its first folder must be a registry table ({tables})"
)
ERR_DELETE_VERSION: Final = (
    "Refusing to delete {path}: its fourth folder must be a card version such as v1.0.0"
)


def check_deletable(parts: list[str], client_path: str) -> None:
    """Raise `InvalidPathError` unless `parts` lie in (or are) a card version's folder."""
    shown = client_path[:200]
    if len(parts) < _VERSION_DEPTH:
        raise InvalidPathError(ERR_DELETE_SCOPE.format(path=shown))
    if parts[0] not in REGISTRY_FOLDERS and parts[0] != SERVING_FOLDER:
        tables = ", ".join([*sorted(REGISTRY_FOLDERS), SERVING_FOLDER])
        raise InvalidPathError(ERR_DELETE_TABLE.format(path=shown, tables=tables))
    if not _VERSION_FOLDER.fullmatch(parts[_VERSION_DEPTH - 1]):
        raise InvalidPathError(ERR_DELETE_VERSION.format(path=shown))
