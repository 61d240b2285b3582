"""What a card field may hold, so that every stored row can always be listed and loaded.

One card with tags nested 300 deep made every listing that included it a 500 (the response
serializer stops at about 250 levels), a NUL in a tag made every tag filter on that key fail
on Postgres, and 50 MB of tags slowed every tag-filtered listing past the client's timeout.
The limits below are far above anything the opsml 2.2.4 client sends: its deepest JSON field
is 3 levels (`artifact_uris`: name -> {local_path, remote_path}; audit card lists of
{name, version, card_type}), tags are a flat `{str: str | int}` of a few entries, and its
largest field is a RunCard's artifact list (about 200 bytes an artifact).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from app.errors import InvalidRequestError

MAX_JSON_DEPTH = 16
# Rows written before these checks (or by the reference server) are served up to this depth,
# below the response serializer's own limit (254 levels in pydantic-core).
MAX_STORED_DEPTH = 200
# A tag filter reads every candidate row's tags: keep them small.
MAX_TAGS_BYTES = 64 * 1024
# All JSON fields of one record together (about 5,000 run artifacts); a listing of 20 cards
# is then at most 20 MiB.
MAX_RECORD_JSON_BYTES = 1024 * 1024
# Integers in JSON as the tables' BIGINT holds them, so SQLite's JSON functions and every
# client's parser read them exactly.
JSON_INT_BOUND = 2**63

ERR_NUL = "Field '{field}' contains a NUL character, which the database cannot store"
ERR_SURROGATE = "Field '{field}' is not valid Unicode (it has an unpaired surrogate)"
ERR_CONTROL = "Field '{field}' contains a control character (tab, newline, ...); remove it"
ERR_DEPTH = "Field '{field}' nests deeper than {depth} levels of objects and lists"
ERR_JSON_NUMBER = (
    "Field '{field}' holds a number out of range: integers must fit in 64 bits and numbers "
    "must be finite"
)
ERR_JSON_KEY = "Field '{field}' has an object key that is not a string"
ERR_JSON_TYPE = "Field '{field}' must hold JSON values only (objects, lists, text, numbers)"
ERR_TOO_LARGE = "Field '{field}' is {size} bytes as JSON; the limit is {limit} bytes"
ERR_RECORD_TOO_LARGE = "The card's JSON fields are {size} bytes together; the limit is {limit}"
ERR_TAGS_OBJECT = "Field 'tags' must be an object of tag names to values"

_SURROGATE = re.compile("[\ud800-\udfff]")
# C0 controls and DEL: nothing a name, version, uid or URI holds; they break paths and logs.
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def check_json_text(field: str, value: str) -> None:
    """Text inside JSON: any character the database's JSON type can store and give back."""
    if "\x00" in value:
        raise InvalidRequestError(ERR_NUL.format(field=field))
    if _SURROGATE.search(value):
        raise InvalidRequestError(ERR_SURROGATE.format(field=field))


def check_column_text(field: str, value: str) -> None:
    """Text of a plain column (names, versions, uids, URIs): no control characters."""
    check_json_text(field, value)
    if _CONTROL.search(value):
        raise InvalidRequestError(ERR_CONTROL.format(field=field))


def check_json(field: str, value: Any) -> int:
    """Check a JSON field's shape and content; return its size in bytes as stored."""
    # Iterative, so a hostile depth cannot exhaust the stack before it is refused.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise InvalidRequestError(ERR_DEPTH.format(field=field, depth=MAX_JSON_DEPTH))
            if isinstance(item, dict):
                for key, child in item.items():
                    if not isinstance(key, str):
                        raise InvalidRequestError(ERR_JSON_KEY.format(field=field))
                    check_json_text(field, key)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            check_json_text(field, item)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if abs(item) >= JSON_INT_BOUND:
                raise InvalidRequestError(ERR_JSON_NUMBER.format(field=field))
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise InvalidRequestError(ERR_JSON_NUMBER.format(field=field))
        else:
            raise InvalidRequestError(ERR_JSON_TYPE.format(field=field))
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def check_stored_json(value: Any) -> None:
    """Whether a decoded stored value can be sent back as JSON (else InvalidRequestError)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > MAX_STORED_DEPTH:
                raise InvalidRequestError(ERR_DEPTH.format(field="stored", depth=MAX_STORED_DEPTH))
            for key, child in item.items():
                stack.append((key, depth))
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            if depth > MAX_STORED_DEPTH:
                raise InvalidRequestError(ERR_DEPTH.format(field="stored", depth=MAX_STORED_DEPTH))
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str) and _SURROGATE.search(item):
            raise InvalidRequestError(ERR_SURROGATE.format(field="stored"))


def check_tags(value: Any, size: int) -> None:
    if not isinstance(value, dict):
        raise InvalidRequestError(ERR_TAGS_OBJECT)
    if size > MAX_TAGS_BYTES:
        raise InvalidRequestError(
            ERR_TOO_LARGE.format(field="tags", size=size, limit=MAX_TAGS_BYTES)
        )


def check_record_json_size(size: int) -> None:
    if size > MAX_RECORD_JSON_BYTES:
        raise InvalidRequestError(
            ERR_RECORD_TOO_LARGE.format(size=size, limit=MAX_RECORD_JSON_BYTES)
        )
