"""Card records as plain dicts: validated on the way in, flattened on the way out."""

from __future__ import annotations

import json
import logging
import math
from functools import cache
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, Integer, String, Text, cast, inspect
from sqlalchemy.orm import ColumnProperty

from app.db.tables import Base
from app.errors import InvalidRequestError
from app.services import values

log = logging.getLogger("opsml_server")

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
def json_fields(table: type[Base]) -> frozenset[str]:
    return frozenset(
        key for key, prop in _columns(table).items() if isinstance(prop.columns[0].type, JSON)
    )


@cache
def record_columns(table: type[Base]) -> tuple[Any, ...]:
    """The table's columns labelled with their attribute names, for Core selects whose rows
    are the records `cards/list` returns (`row_to_record`), without ORM objects.

    JSON columns are read as text and decoded by `row_to_record`, not by the driver: one row
    written badly (by an older server, or by hand) then loses that field in the answer
    instead of failing the whole listing."""
    json_keys = json_fields(table)
    return tuple(
        (cast(prop.columns[0], Text) if key in json_keys else prop.columns[0]).label(key)
        for key, prop in _columns(table).items()
    )


def row_to_record(table: type[Base], row: Any) -> dict[str, Any]:
    """A row of `record_columns` as the record `cards/list` returns."""
    record: dict[str, Any] = row._asdict()
    for key in json_fields(table):
        raw = record.get(key)
        if raw is not None:
            record[key] = _stored_json(table, record.get("uid"), key, raw)
    return record


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _stored_json(table: type[Base], uid: Any, key: str, raw: Any) -> Any:
    if not isinstance(raw, str):  # SQLite keeps whatever type was written
        return (
            raw if isinstance(raw, int) or (isinstance(raw, float) and math.isfinite(raw)) else None
        )
    try:
        decoded = json.loads(raw, parse_constant=_refuse_constant)
        values.check_stored_json(decoded)
    except (ValueError, RecursionError, InvalidRequestError):
        # The uid and field name only: the value itself may be anything.
        log.warning(
            "unreadable stored field",
            extra={"fields": {"table": table.__tablename__, "uid": str(uid)[:64], "field": key}},
        )
        return None
    return decoded


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
    json_size = 0
    for key, value in record.items():
        if value is not None:
            size = check_value(key, value, columns[key].columns[0].type)
            if key == "tags":
                values.check_tags(value, size)
            json_size += size
    values.check_record_json_size(json_size)
    return record


def column_type(table: type[Base], key: str) -> Any:
    return _columns(table)[key].columns[0].type


def check_value(key: str, value: Any, column_type: Any) -> int:
    """Refuse a value the column cannot hold; return its size as JSON for JSON columns."""
    if isinstance(column_type, String) and not isinstance(column_type, JSON):
        if not isinstance(value, str):
            raise InvalidRequestError(ERR_FIELD_TYPE.format(field=key, expected="a string"))
        if column_type.length is not None and len(value) > column_type.length:
            raise InvalidRequestError(ERR_FIELD_LENGTH.format(field=key, length=column_type.length))
        values.check_column_text(key, value)
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
        if isinstance(value, int) and abs(value) >= values.JSON_INT_BOUND:
            raise InvalidRequestError(values.ERR_JSON_NUMBER.format(field=key))
        if not math.isfinite(value):
            raise InvalidRequestError(values.ERR_JSON_NUMBER.format(field=key))
    elif isinstance(column_type, JSON):
        return values.check_json(key, value)
    return 0


@cache
def not_null_fields(table: type[Base]) -> tuple[str, ...]:
    """Columns the table declares NOT NULL (our fresh schema types the JSON lists so), except
    keys the database generates."""
    return tuple(
        key
        for key, prop in _columns(table).items()
        if not prop.columns[0].nullable and prop.columns[0].autoincrement is not True
    )


def require_stored(table: type[Base], record: dict[str, Any]) -> None:
    """A record as it will be stored has every NOT NULL column (a 400, not a database error)."""
    for name in not_null_fields(table):
        if record.get(name) is None:
            raise InvalidRequestError(ERR_REQUIRED.format(field=name))


def require(record: dict[str, Any], *fields: str) -> None:
    for name in fields:
        if record.get(name) in (None, ""):
            raise InvalidRequestError(ERR_REQUIRED.format(field=name))


def clean_name(value: str | None) -> str | None:
    """Names and repositories are stored lower-case with `-` for `_`, as the client sends."""
    return None if value is None else value.strip().lower().replace("_", "-")
