"""Wrong types anywhere in a request body are a 4xx with a message, on every database.

The cases are not a list someone wrote: they walk the app's own OpenAPI request schemas (every
field of every JSON body, nested ones too) and the columns of every registry table (the card
records and `query_terms`, whose keys the schemas cannot name), so a new field or route is
covered as soon as it exists.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.services import records
from app.services.registries import REGISTRY_TABLES
from tests.app.helpers import card_record

# One value of each JSON type, and the values that broke databases before (out of range,
# NUL, an unpaired surrogate): whatever a field's type, most of them are wrong for it.
WRONG_VALUES: list[Any] = [
    "abc",
    "",
    "a\x00b",
    "a\ud800b",
    0,
    -1,
    1.5,
    2**63,
    10**40,
    -(10**40),
    True,
    None,
    [],
    [1, "a"],
    {},
    {"a": {"b": 1}},
]

# Names no other test uses (tests share the session's Postgres database).
RUN = f"typed-run-{uuid.uuid4().hex[:8]}"
REPO = f"types-{uuid.uuid4().hex[:8]}"

# A valid body per JSON route, on which each field in turn is replaced by a wrong value.
VALID_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/opsml/cards/uid"): {"uid": "None", "registry_type": "data"},
    ("POST", "/opsml/cards/version"): {
        "name": "typed",
        "repository": REPO,
        "registry_type": "data",
        "version": {"version": "1.0.0"},
        "version_type": "minor",
        "pre_tag": "rc",
        "build_tag": "build",
    },
    ("POST", "/opsml/cards/list"): {
        "registry_type": "data",
        "name": "typed",
        "repository": REPO,
        "version": "1.0.0",
        "uid": "u",
        "max_date": "2030-01-01",
        "limit": 5,
        "tags": {"k": "v"},
        "table_name": "OPSML_DATA_REGISTRY",
        "ignore_release_candidates": False,
        "project_id": None,
        "query_terms": {"contact": "x"},
        "sort_by_timestamp": False,
    },
    ("POST", "/opsml/cards/create"): {"card": {}, "registry_type": "data"},
    ("POST", "/opsml/cards/update"): {"card": {}, "registry_type": "data"},
    ("POST", "/opsml/cards/delete"): {"card": {"uid": "gone"}, "registry_type": "data"},
    ("PUT", "/opsml/metrics"): {
        "metric": [{"run_uid": RUN, "name": "m", "value": 1.0, "step": 1, "timestamp": 1}]
    },
    ("POST", "/opsml/metrics"): {"run_uid": RUN, "name": ["m"], "names_only": False},
    ("POST", "/opsml/models/metadata"): {
        "name": "typed",
        "repository": REPO,
        "version": "1.0.0",
        "uid": "u",
        "ignore_release_candidate": False,
    },
    ("POST", "/opsml/models/metrics"): {
        "name": "typed",
        "repository": REPO,
        "version": "1.0.0",
        "uid": "u",
    },
    ("POST", "/opsml/models/compare_metrics"): {
        "metric_name": ["m"],
        "lower_is_better": True,
        "challenger_uid": "u",
        "champion_uid": ["v"],
    },
    ("POST", "/opsml/models/register"): {
        "name": "typed",
        "repository": REPO,
        "version": "1",
        "onnx": False,
        "ignore_release_candidate": True,
    },
}


def _json_routes(client: TestClient) -> dict[tuple[str, str], dict[str, Any]]:
    """Every route with a JSON body, with its request schema (components resolved)."""
    spec = client.app.openapi()  # type: ignore[attr-defined]
    components = spec.get("components", {}).get("schemas", {})

    def resolve(schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = components[schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    routes: dict[tuple[str, str], dict[str, Any]] = {}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                schema = content["application/json"]["schema"]
                routes[(method.upper(), path)] = {"schema": schema, "resolve": resolve}
    return routes


def _field_paths(
    schema: dict[str, Any], body: Any, resolve: Any, prefix: tuple[Any, ...] = ()
) -> Iterator[tuple[Any, ...]]:
    """Paths (keys and list indexes) of every field the schema declares, nested ones too,
    where the valid body has somewhere to put them."""
    schema = resolve(schema)
    for option in schema.get("anyOf", []):
        yield from _field_paths(option, body, resolve, prefix)
    if schema.get("type") == "object" and isinstance(body, dict):
        for key, sub in schema.get("properties", {}).items():
            yield (*prefix, key)
            if key in body:
                yield from _field_paths(sub, body[key], resolve, (*prefix, key))
    if schema.get("type") == "array" and isinstance(body, list) and body:
        yield from _field_paths(schema.get("items", {}), body[0], resolve, (*prefix, 0))


def _with(body: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    target: Any = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return changed


def _send(client: TestClient, method: str, path: str, body: dict[str, Any]) -> Any:
    # json.dumps escapes an unpaired surrogate as \ud800, as any JSON client may send it.
    return client.request(
        method, path, content=json.dumps(body), headers={"content-type": "application/json"}
    )


def _problem(response: Any, case: Any) -> list[Any]:
    """[] when the answer is a success or a 4xx with a message, else the case and answer."""
    if response.status_code >= 500:
        return [(case, response.status_code, response.text[:200])]
    if response.status_code >= 400:
        detail = response.json().get("detail")
        if not (isinstance(detail, str) and detail):
            return [(case, response.status_code, response.text[:200])]
    return []


def test_every_json_route_has_a_valid_body_here(client: TestClient) -> None:
    # A new route with a JSON body fails here until it gets a valid body above (and so is
    # walked by the tests below).
    assert sorted(_json_routes(client)) == sorted(VALID_BODIES)


def test_valid_bodies_are_accepted(client: TestClient) -> None:
    for (method, path), body in VALID_BODIES.items():
        if path == "/opsml/cards/create":
            created = card_record("typed", REPO, "1.0.0")
            body = {**body, "card": created}
        if path == "/opsml/cards/update":
            body = {**body, "card": {**created, "contact": "new"}}
        response = _send(client, method, path, body)
        assert response.status_code in (200, 404), (path, response.text)


def test_wrong_types_in_every_body_field_are_4xx(client: TestClient) -> None:
    problems: list[Any] = []
    for (method, path), route in _json_routes(client).items():
        body = VALID_BODIES[(method, path)]
        fields = set(_field_paths(route["schema"], body, route["resolve"]))
        assert fields, path
        for field in sorted(fields, key=str):
            for value in WRONG_VALUES:
                response = _send(client, method, path, _with(body, field, value))
                problems += _problem(response, (method, path, field, value))
    assert problems == [], problems[:20]


@pytest.mark.parametrize("registry", sorted(REGISTRY_TABLES))
def test_wrong_types_in_every_card_column_are_4xx(client: TestClient, registry: str) -> None:
    table = REGISTRY_TABLES[registry]
    problems: list[Any] = []
    base = card_record("typed", f"{REPO}-{registry}", "1.0.0", project_id=1, tags={})
    base = {k: v for k, v in base.items() if k in records.field_names(table)}
    for column in records.field_names(table):
        for value in WRONG_VALUES:
            case = (registry, column, value)
            card = {**base, "uid": uuid.uuid4().hex, column: value}
            for route in ("create", "update"):
                response = _send(
                    client,
                    "POST",
                    f"/opsml/cards/{route}",
                    {"card": card, "registry_type": registry},
                )
                problems += _problem(response, (route, *case))
            listed = _send(
                client,
                "POST",
                "/opsml/cards/list",
                {"registry_type": registry, "query_terms": {column: value}},
            )
            problems += _problem(listed, ("list", *case))
            tagged = _send(
                client,
                "POST",
                "/opsml/cards/list",
                {"registry_type": registry, "tags": {"k": value}},
            )
            problems += _problem(tagged, ("tags", *case))
    assert problems == [], problems[:20]
    # Whatever was accepted above can be listed back.
    everything = _send(
        client,
        "POST",
        "/opsml/cards/list",
        {"registry_type": registry, "repository": base["repository"]},
    )
    assert everything.status_code == 200, everything.text
