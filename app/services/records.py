"""Card records as plain dicts: validated on the way in, flattened on the way out."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, Integer, String, inspect
from sqlalchemy.orm import ColumnProperty

from app.db.tables import Base
from app.errors import InvalidRequestError

ERR_UNKNOWN_FIELDS = "Unknown field(s) for {registry} cards: {fields}. Known fields: {known}"
ERR_FIELD_TYPE = "Field '{field}' must be {expected}"
ERR_FIELD_LENGTH = "Field '{field}' is longer than {length} characters"
ERR_REQUIRED = "Field '{field}' is required"


def _columns(table: type[Base]) -> dict[str, ColumnProperty[Any]]:
    return {prop.key: prop for prop in inspect(table).column_attrs}


def field_names(table: type[Base]) -> list[str]:
    return list(_columns(table))


def to_dict(row: Base) -> dict[str, Any]:
    """All columns under their attribute names, as the reference's `cards/list` returns them."""
    return {key: getattr(row, key) for key in _columns(row.__class__)}


@cache
def record_columns(table: type[Base]) -> tuple[Any, ...]:
    """The table's columns labelled with their attribute names, for Core selects whose rows
    are the records `cards/list` returns (`row._asdict()`), without ORM objects."""
    return tuple(prop.columns[0].label(key) for key, prop in _columns(table).items())


def validate_record(table: type[Base], record: dict[str, Any], registry: str) -> dict[str, Any]:
    """Check keys and value types against the table, so bad input is a 4xx, not a DB error."""
    columns = _columns(table)
    unknown = sorted(set(record) - set(columns))
    if unknown:
        raise InvalidRequestError(
            ERR_UNKNOWN_FIELDS.format(
                registry=registry,
                fields=", ".join(k[:64] for k in unknown[:10]),
                known=", ".join(columns),
            )
        )
    for key, value in record.items():
        if value is not None:
            _check_value(key, value, columns[key].columns[0].type)
    return record


def _check_value(key: str, value: Any, column_type: Any) -> None:
    if isinstance(column_type, String) and not isinstance(column_type, JSON):
        if not isinstance(value, str):
            raise InvalidRequestError(ERR_FIELD_TYPE.format(field=key, expected="a string"))
        if column_type.length is not None and len(value) > column_type.length:
            raise InvalidRequestError(ERR_FIELD_LENGTH.format(field=key, length=column_type.length))
    elif isinstance(column_type, Boolean):
        if not isinstance(value, bool):
            raise InvalidRequestError(ERR_FIELD_TYPE.format(field=key, expected="true or false"))
    elif isinstance(column_type, Integer | BigInteger):
        if isinstance(value, bool) or not isinstance(value, int) or abs(value) >= 2**63:
            raise InvalidRequestError(ERR_FIELD_TYPE.format(field=key, expected="an integer"))
        if (
            isinstance(column_type, Integer)
            and not isinstance(column_type, BigInteger)
            and abs(value) >= 2**31
        ):
            raise InvalidRequestError(ERR_FIELD_TYPE.format(field=key, expected="a 32-bit integer"))
    elif isinstance(column_type, Float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidRequestError(ERR_FIELD_TYPE.format(field=key, expected="a number"))
    elif isinstance(column_type, JSON):
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidRequestError(ERR_FIELD_TYPE.format(field=key, expected="JSON")) from exc


def require(record: dict[str, Any], *fields: str) -> None:
    for name in fields:
        if record.get(name) in (None, ""):
            raise InvalidRequestError(ERR_REQUIRED.format(field=name))


def clean_name(value: str | None) -> str | None:
    """Names and repositories are stored lower-case with `-` for `_`, as the client sends."""
    return None if value is None else value.strip().lower().replace("_", "-")
