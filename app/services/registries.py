"""Which table a request means: `registry_type` (data, model, ...) or `table_name`."""

from __future__ import annotations

from app.db.tables import CARD_TABLES, Base, ProjectRecord
from app.errors import InvalidRequestError

RegistryTable = type[Base]

REGISTRY_TABLES: dict[str, RegistryTable] = {**CARD_TABLES, "project": ProjectRecord}
_BY_TABLE_NAME = {table.__tablename__: name for name, table in REGISTRY_TABLES.items()}
# `audit` is listed for registry/table lookups; metrics has no card registry.
VALID_TYPES = ", ".join(sorted(REGISTRY_TABLES))

ERR_UNKNOWN_REGISTRY = "Unknown registry type '{value}'; use one of: " + VALID_TYPES
ERR_NO_REGISTRY = "Request names no registry: send registry_type (one of: " + VALID_TYPES + ")"


def registry_name(registry_type: str | None, table_name: str | None = None) -> str:
    """Resolve the request's registry; `registry_type` wins when both are sent."""
    if registry_type:
        name = registry_type.strip().lower()
        if name not in REGISTRY_TABLES:
            raise InvalidRequestError(ERR_UNKNOWN_REGISTRY.format(value=registry_type[:64]))
        return name
    if table_name:
        name = _BY_TABLE_NAME.get(table_name.strip().upper(), "")
        if not name:
            raise InvalidRequestError(ERR_UNKNOWN_REGISTRY.format(value=table_name[:64]))
        return name
    raise InvalidRequestError(ERR_NO_REGISTRY)


def registry_table(registry_type: str | None, table_name: str | None = None) -> RegistryTable:
    return REGISTRY_TABLES[registry_name(registry_type, table_name)]
