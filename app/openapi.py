"""What the published OpenAPI says about errors: one shape, `{"detail": "<message>"}`.

Every error this server sends, from a domain error, a refused body or the HTTP layer
(app.http_protocol), is that object with a message for the user, and the OpsML client shows
`detail` as it is. FastAPI would document its own 422 (an array of validation errors), which
we never send; declaring 422 here replaces it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException


class ErrorResponse(BaseModel):
    detail: str


_WHEN = {
    400: "The request is well-formed but wrong (bad path, unknown registry or card field, ...)",
    401: "Login is on and the request has no valid HTTP Basic credentials",
    403: "A write in production without the right X-Prod-Token",
    404: "The card, file or model asked for does not exist",
    408: "The request head or body did not arrive in time (OPSML_*_TIMEOUT_S)",
    409: "The card version or path already exists",
    413: "The body is over OPSML_MAX_JSON_BYTES, or the upload over OPSML_MAX_UPLOAD_BYTES",
    414: "The request line is over OPSML_MAX_HEADER_BYTES",
    422: "The body or a parameter does not match this schema",
    431: "The request headers are over OPSML_MAX_HEADER_BYTES",
    503: "The database or storage cannot be reached right now; retry",
    507: "Storage is full; nothing was stored",
}

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in _WHEN.items()
}


def _registry_types() -> list[str]:
    from app.services.registries import REGISTRY_TABLES

    return sorted(REGISTRY_TABLES)


def _table_names() -> list[str]:
    from app.services.registries import REGISTRY_TABLES

    return sorted(table.__tablename__ for table in REGISTRY_TABLES.values())


# The server also takes these in any case and with surrounding spaces; the schema names the
# canonical spelling the client sends.
REGISTRY_TYPE_SCHEMA: dict[str, Any] = {
    "type": "string",
    "enum": _registry_types(),
    "description": "data, model, run, pipeline, project or audit (case-insensitive)",
}
TABLE_NAME_SCHEMA: dict[str, Any] = {"type": "string", "enum": _table_names()}
# Request bodies that name a registry need `registry_type` or `table_name` (registry_type wins).
ONE_REGISTRY_REQUIRED: dict[str, Any] = {
    "anyOf": [
        {"required": ["registry_type"], "properties": {"registry_type": REGISTRY_TYPE_SCHEMA}},
        {"required": ["table_name"], "properties": {"table_name": TABLE_NAME_SCHEMA}},
    ]
}


def _client_path_pattern(*, below_root: bool) -> str:
    from app.storage.paths import MAX_SEGMENT_LENGTH, OPSML_ROOT

    # What app.storage.paths.relative_parts accepts, without look-arounds (test generators
    # cannot draw from those): segments of printable characters without a backslash, each
    # at most MAX_SEGMENT_LENGTH long and never exactly "..". `below_root`: at least one
    # segment that is not empty or "." (uploads and pre-signed URLs name a file).
    char = r"[^/\\\u0000-\u001f\u007f]"
    first = r"[^/.\\\u0000-\u001f\u007f]"
    named = (
        rf"(?:{first}{char}{{0,{MAX_SEGMENT_LENGTH - 1}}}"
        rf"|\.{first}{char}{{0,{MAX_SEGMENT_LENGTH - 2}}}"
        rf"|\.\.{char}{{1,{MAX_SEGMENT_LENGTH - 2}}})"
    )
    segment = rf"(?:{named}|\.)?"
    if below_root:
        return f"^{OPSML_ROOT}(?:\\.?/)*{named}(?:/{segment})*$"
    return f"^{OPSML_ROOT}{segment}(?:/{segment})*$"


def _path_schema(*, below_root: bool) -> dict[str, Any]:
    return {
        "type": "string",
        "maxLength": 1024,
        "pattern": _client_path_pattern(below_root=below_root),
        "description": "opsml-root:/<TABLE>/<repo>/<name>/v<version>/<file>; no '..' segments",
    }


CLIENT_PATH_SCHEMA = _path_schema(below_root=False)
FILE_PATH_SCHEMA = _path_schema(below_root=True)

_TEXT = {"type": "string", "minLength": 1}
# POST models/metadata needs a uid, or a name and a repository.
MODEL_SELECTOR_REQUIRED: dict[str, Any] = {
    "anyOf": [
        {"required": ["uid"], "properties": {"uid": _TEXT}},
        {"required": ["name", "repository"], "properties": {"name": _TEXT, "repository": _TEXT}},
    ]
}

# The upload route reads its multipart body as a stream, so FastAPI cannot see the part.
UPLOAD_OPENAPI: dict[str, Any] = {
    "parameters": [
        {
            "name": "write_path",
            "in": "header",
            "required": True,
            "schema": FILE_PATH_SCHEMA,
            "description": "Where the file goes: a file below opsml-root:/, not the root",
        }
    ],
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    },
}
DOWNLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The file's bytes",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}

ERR_METHOD = "{method} is not allowed on {path}; use {allowed}"


async def _method_not_allowed(request: Request, exc: Exception) -> JSONResponse:
    # Starlette's Allow names the methods of the first route matching the path only, and
    # /opsml/metrics is three routes (GET, POST, PUT): answer from the published document.
    assert isinstance(exc, HTTPException)
    documented = request.app.openapi()["paths"].get(request.url.path, {})
    allowed = ", ".join(sorted(method.upper() for method in documented))
    allowed = allowed or (exc.headers or {}).get("Allow", "")
    message = ERR_METHOD.format(method=request.method, path=request.url.path, allowed=allowed)
    return JSONResponse({"detail": message}, status_code=405, headers={"Allow": allowed})


def install_method_not_allowed(app: FastAPI) -> None:
    app.add_exception_handler(405, _method_not_allowed)


def _supplied_version_pattern() -> str:
    from app.services.semver import PARTIAL_PATTERN, SEMVER_PATTERN

    return rf"^\s*(?:{PARTIAL_PATTERN.strip('^$')}|{SEMVER_PATTERN.strip('^$')})\s*$"


def _tag_schema(build: bool) -> dict[str, Any]:
    from app.services.semver import BUILD_TAG_PATTERN, PRE_TAG_PATTERN

    # 48 characters: room for `git.<40-hex sha>` within the 64 of a stored version.
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": TAG_MAX_LENGTH,
        "pattern": BUILD_TAG_PATTERN if build else PRE_TAG_PATTERN,
    }


TAG_MAX_LENGTH = 48

SUPPLIED_VERSION_SCHEMA: dict[str, Any] = {
    "type": "string",
    "maxLength": 64,
    "pattern": _supplied_version_pattern(),
    "description": "X, X.Y or a full semantic version",
}
PRE_TAG_SCHEMA: dict[str, Any] = _tag_schema(build=False)
BUILD_TAG_SCHEMA: dict[str, Any] = _tag_schema(build=True)
# cards/list ignores an empty max_date.
MAX_DATE_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "string", "format": "date"}, {"const": ""}, {"type": "null"}]
}
# cards/delete needs only the card's uid.
DELETE_CARD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["uid"],
    "properties": {"uid": {"type": "string", "minLength": 1}},
}


_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def _integer_bounds_as_integers(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("type") == "integer":
            for key in _BOUNDS:
                value = node.get(key)
                if isinstance(value, float) and value.is_integer():
                    node[key] = int(value)
        for child in node.values():
            _integer_bounds_as_integers(child)
    elif isinstance(node, list):
        for child in node:
            _integer_bounds_as_integers(child)


def install_exact_integer_bounds(app: FastAPI) -> None:
    """Publish integer bounds as integers.

    FastAPI's OpenAPI model types `minimum`/`maximum` as floats, so a BIGINT bound came out as
    9.223372036854775e+18 and clients comparing in doubles took values just above it for valid.
    Our bounds lie on the double grid (`app.schemas.BIGINT_BOUND`), so the integer is exact.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _integer_bounds_as_integers(generate())
        return app.openapi_schema  # type: ignore[return-value]  # set by generate()

    app.openapi = openapi  # type: ignore[method-assign]
