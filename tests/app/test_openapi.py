"""The published OpenAPI matches what the server does (the full fuzz run is in
tests/production/test_schemathesis.py): one error shape on every route, 405s that list every
method, and documented patterns that accept exactly what the server accepts."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.errors import InvalidPathError
from app.openapi import CLIENT_PATH_SCHEMA, FILE_PATH_SCHEMA, SUPPLIED_VERSION_SCHEMA
from app.schemas import BIGINT_BOUND
from app.services import semver
from app.storage.paths import relative_parts

ERROR_STATUSES = ("400", "401", "403", "404", "409", "413", "422", "503", "507")


def _document(client: TestClient) -> dict[str, Any]:
    document: dict[str, Any] = client.get("/openapi.json").json()
    return document


def test_every_opsml_operation_documents_the_one_error_shape(client: TestClient) -> None:
    document = _document(client)
    error = document["components"]["schemas"]["ErrorResponse"]
    assert error["properties"]["detail"] == {"type": "string", "title": "Detail"}
    assert "HTTPValidationError" not in document["components"]["schemas"]
    operations = [
        (method, path, operation)
        for path, item in document["paths"].items()
        if path.startswith("/opsml/")
        for method, operation in item.items()
    ]
    assert len(operations) >= 19
    for method, path, operation in operations:
        for status in ERROR_STATUSES:
            content = operation["responses"][status]["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}, (
                method,
                path,
                status,
            )


def test_a_validation_error_is_the_documented_string(client: TestClient) -> None:
    response = client.post("/opsml/cards/list", json={"registry_type": "data", "limit": "ten"})
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], str) and "limit" in response.json()["detail"]


def test_method_not_allowed_lists_every_method_of_the_path(client: TestClient) -> None:
    response = client.request("DELETE", "/opsml/metrics")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST, PUT"
    assert "GET, POST, PUT" in response.json()["detail"]


def test_download_documents_a_byte_stream(client: TestClient) -> None:
    responses = _document(client)["paths"]["/opsml/files/download"]["get"]["responses"]
    assert list(responses["200"]["content"]) == ["application/octet-stream"]


PATHS = [
    "opsml-root:/",
    "opsml-root:",
    "opsml-root://./",
    "opsml-root:/a/b/c.bin",
    "opsml-root:a",
    "opsml-root:/.hidden/..x/.../y",
    "opsml-root:/../x",
    "opsml-root:..",
    "opsml-root:/a/..",
    "opsml-root:/a\\b",
    "opsml-root:/a\x00b",
    "opsml-root:/a\x7fb",
    "/etc/passwd",
    "file:///etc/passwd",
    "opsml-root:/" + "s" * 255,
    "opsml-root:/" + "s" * 256,
]


def _server_accepts(path: str) -> bool:
    try:
        relative_parts(path)
    except InvalidPathError:
        return False
    return True


@pytest.mark.parametrize("path", PATHS)
def test_the_path_pattern_accepts_what_the_server_accepts(path: str) -> None:
    assert bool(re.match(CLIENT_PATH_SCHEMA["pattern"], path)) == _server_accepts(path)
    names_a_file = _server_accepts(path) and bool(relative_parts(path))
    assert bool(re.match(FILE_PATH_SCHEMA["pattern"], path)) == names_a_file


@pytest.mark.parametrize(
    "version", ["1", "1.2", "0.0", "1.2.3", "1.2.3-rc.1+build.2", "01", "1.02", "1.2.3.4", "x", ""]
)
def test_the_supplied_version_pattern_accepts_what_the_server_accepts(version: str) -> None:
    try:
        semver.validate_supplied_version(version)
        accepted = True
    except semver.VersionFormatError:
        accepted = False
    assert bool(re.match(SUPPLIED_VERSION_SCHEMA["pattern"], version)) == accepted


@pytest.mark.parametrize("version", ["0" * 63, "01", "1.02"])
def test_a_supplied_version_with_leading_zeros_is_400(client: TestClient, version: str) -> None:
    response = client.post(
        "/opsml/cards/version",
        json={
            "registry_type": "data",
            "name": "zeros",
            "repository": "openapi",
            "version": {"version": version},
            "version_type": "minor",
        },
    )
    assert response.status_code == 400, response.text
    assert "partial semver" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"registry_type": "data", "sort_by_timestamp": 0}, "sort_by_timestamp"),
        ({"registry_type": "data", "limit": True}, "limit"),
        ({"registry_type": "data", "limit": "10"}, "limit"),
    ],
)
def test_values_of_the_wrong_json_type_are_refused(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    response = client.post("/opsml/cards/list", json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]


def test_an_integral_float_limit_is_still_an_integer(client: TestClient) -> None:
    response = client.post("/opsml/cards/list", json={"registry_type": "data", "limit": 3.0})
    assert response.status_code == 200, response.text


def test_integer_bounds_are_published_exactly(client) -> None:
    # FastAPI types bounds as floats; a BIGINT bound as a double let clients think values just
    # above it were valid (schemathesis found one). Every integer bound is an exact integer.
    def bounds(node):
        if isinstance(node, dict):
            if node.get("type") == "integer":
                yield from (node[k] for k in ("minimum", "maximum") if k in node)
            for child in node.values():
                yield from bounds(child)
        elif isinstance(node, list):
            for child in node:
                yield from bounds(child)

    published = list(bounds(client.get("/openapi.json").json()))
    assert published and all(isinstance(value, int) for value in published), published
    assert BIGINT_BOUND in published


@pytest.mark.parametrize(
    "tag",
    ["rc", "rc.1", "git.3f2a9c1", "0", "rc.01", "01", "a_b", "rc+1", "git.", ".rc", "x-y.z-1"],
)
@pytest.mark.parametrize("build", [False, True])
def test_published_tag_patterns_are_what_cards_version_accepts(tag: str, build: bool) -> None:
    from app.openapi import BUILD_TAG_SCHEMA, PRE_TAG_SCHEMA

    schema = BUILD_TAG_SCHEMA if build else PRE_TAG_SCHEMA
    published = re.fullmatch(schema["pattern"], tag) is not None
    try:
        semver.validate_tag(tag, "tag", build=build)
        accepted = True
    except semver.VersionFormatError:
        accepted = False
    assert published == accepted, (tag, build)
