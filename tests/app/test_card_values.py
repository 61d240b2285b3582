"""Card fields are checked on create and update (depth, size, characters, numbers), so that
whatever is stored can always be listed and loaded; and a stored row that is bad anyway
(written by an older server or the reference) costs only its own field, never the listing."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from app.db.engine import build_engine
from app.db.tables import CARD_TABLES
from app.services import records, values
from app.services.cards import ERR_TAG_VALUE, ERR_TERM_JSON
from app.settings import Settings
from tests.app.helpers import card_record, create, list_cards

# Every JSON column of every card table, with a valid value of the client's shape.
JSON_FIELDS = [
    (registry, key)
    for registry, table in sorted(CARD_TABLES.items())
    for key in sorted(records.json_fields(table))
]


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def _full_card(registry: str, repo: str, **fields: Any) -> dict[str, Any]:
    """A card with every JSON column set, as the client sends one."""
    table = CARD_TABLES[registry]
    card = card_record("valued", repo, "1.0.0")
    for key in records.json_fields(table):
        card.setdefault(key, {} if key in ("tags", "artifact_uris") else [])
    card.update(fields)
    return card


def _post(client: TestClient, route: str, registry: str, card: dict[str, Any]) -> Any:
    # json.dumps escapes an unpaired surrogate as \ud800 (httpx would fail to encode it).
    body = json.dumps({"card": card, "registry_type": registry})
    return client.post(
        f"/opsml/cards/{route}", content=body, headers={"content-type": "application/json"}
    )


@pytest.mark.parametrize(("registry", "key"), JSON_FIELDS)
def test_json_nested_too_deep_is_a_400_on_create_and_update(
    client: TestClient, unique: str, registry: str, key: str
) -> None:
    repo = f"deep-{unique}"
    too_deep = _nested(300)
    response = _post(client, "create", registry, _full_card(registry, repo, **{key: too_deep}))
    expected = values.ERR_DEPTH.format(field=key, depth=values.MAX_JSON_DEPTH)
    assert (response.status_code, response.json()["detail"]) == (400, expected)

    deepest = _nested(values.MAX_JSON_DEPTH)
    card = _full_card(registry, repo, **{key: deepest})
    assert _post(client, "create", registry, card).status_code == 200
    response = _post(client, "update", registry, {**card, key: [too_deep]})
    assert (response.status_code, response.json()["detail"]) == (400, expected)
    # The registry's default listing (what broke for everyone) and the card itself still load.
    assert client.post("/opsml/cards/list", json={"registry_type": registry}).status_code == 200
    [listed] = list_cards(client, registry, uid=card["uid"])
    assert listed[key] == deepest


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"tags": {"k": "a\x00b"}}, values.ERR_NUL.format(field="tags")),
        ({"tags": {"a\x00b": "v"}}, values.ERR_NUL.format(field="tags")),
        ({"tags": {"k": "a\ud800b"}}, values.ERR_SURROGATE.format(field="tags")),
        ({"tags": {"k": 2**63}}, values.ERR_JSON_NUMBER.format(field="tags")),
        ({"tags": ["not", "an", "object"]}, values.ERR_TAGS_OBJECT),
        ({"tags": "x"}, values.ERR_TAGS_OBJECT),
        ({"contact": "a\x00b"}, values.ERR_NUL.format(field="contact")),
        ({"contact": "a\ud800b"}, values.ERR_SURROGATE.format(field="contact")),
        ({"name": "line\nbreak"}, values.ERR_CONTROL.format(field="name")),
        ({"repository": "tab\there"}, values.ERR_CONTROL.format(field="repository")),
        ({"data_type": "bell\x07"}, values.ERR_CONTROL.format(field="data_type")),
        ({"runcard_uid": "x\x7f"}, values.ERR_CONTROL.format(field="runcard_uid")),
    ],
)
def test_text_and_numbers_the_databases_cannot_give_back_are_400(
    client: TestClient, unique: str, fields: dict[str, Any], message: str
) -> None:
    card = _full_card("data", f"chars-{unique}", **fields)
    response = _post(client, "create", "data", card)
    assert (response.status_code, response.json()["detail"]) == (400, message)
    good = _full_card("data", f"chars-{unique}", tags={"k": "v"})
    assert _post(client, "create", "data", good).status_code == 200
    response = _post(client, "update", "data", {**good, **fields})
    assert (response.status_code, response.json()["detail"]) == (400, message)
    # Tag filters on the key still work, on every database.
    assert [
        c["uid"] for c in list_cards(client, tags={"k": "v"}, repository=good["repository"])
    ] == [good["uid"]]


def test_a_tag_value_with_nul_cannot_break_tag_filters(client: TestClient, unique: str) -> None:
    repo = f"nul-{unique}"
    bad = _post(client, "create", "data", _full_card("data", repo, tags={"stage": "p\x00"}))
    assert bad.status_code == 400
    good = create(client, "valued", repo, "2.0.0", tags={"stage": "prod"})
    listed = list_cards(client, tags={"stage": "prod"}, repository=repo)
    assert [c["uid"] for c in listed] == [good["uid"]]
    response = client.post(
        "/opsml/cards/list", json={"registry_type": "data", "tags": {"stage": "p\x00"}}
    )
    assert (response.status_code, response.json()["detail"]) == (
        400,
        values.ERR_NUL.format(field="tags"),
    )
    response = client.post(
        "/opsml/cards/list", json={"registry_type": "data", "tags": {"stage": {"a": 1}}}
    )
    assert (response.status_code, response.json()["detail"]) == (
        400,
        ERR_TAG_VALUE.format(tag="stage"),
    )


def test_oversized_tags_and_records_are_400(client: TestClient, unique: str) -> None:
    repo = f"big-{unique}"
    tags = {f"k{i}": "v" * 1000 for i in range(70)}  # about 70 KB
    response = _post(client, "create", "data", _full_card("data", repo, tags=tags))
    assert response.status_code == 400
    assert response.json()["detail"].startswith(
        values.ERR_TOO_LARGE.split("{size}")[0].format(field="tags")
    )
    uris = {
        f"artifact-{i}": {"local_path": "x" * 200, "remote_path": "y" * 200} for i in range(3000)
    }
    response = _post(client, "create", "run", _full_card("run", repo, artifact_uris=uris))
    assert response.status_code == 400
    assert response.json()["detail"].startswith(values.ERR_RECORD_TOO_LARGE.split("{size}")[0])
    # Real sizes pass: 50 tags and 1,000 run artifacts.
    tags = {f"k{i}": "v" * 100 for i in range(50)}
    uris = {f"artifact-{i}": {"local_path": "x" * 80, "remote_path": "y" * 80} for i in range(1000)}
    card = _full_card("run", repo, tags=tags, artifact_uris=uris)
    assert _post(client, "create", "run", card).status_code == 200
    [listed] = list_cards(client, "run", uid=card["uid"])
    assert listed["tags"] == tags and listed["artifact_uris"] == uris


def test_json_fields_cannot_be_query_terms(client: TestClient) -> None:
    response = client.post(
        "/opsml/cards/list", json={"registry_type": "data", "query_terms": {"tags": {"a": "b"}}}
    )
    assert (response.status_code, response.json()["detail"]) == (
        400,
        ERR_TERM_JSON.format(term="tags"),
    )


def _insert_raw(database_url: str, uid: str, repository: str, version: Any, tags: str) -> None:
    """A row as an older server (or someone with SQL) might have left it."""
    engine = build_engine(Settings(OPSML_TRACKING_URI=database_url, OPSML_STORAGE_URI="/tmp"))
    json_value = "CAST(:tags AS JSON)" if engine.dialect.name == "postgresql" else ":tags"
    with engine.begin() as connection:
        connection.execute(
            text(
                'INSERT INTO "OPSML_DATA_REGISTRY" (uid, name, repository, version, tags) '
                f"VALUES (:uid, 'legacy', :repository, :version, {json_value})"
            ),
            {"uid": uid, "repository": repository, "version": version, "tags": tags},
        )
    engine.dispose()


def test_a_bad_stored_row_does_not_break_the_listing(
    client: TestClient, database_url: str, unique: str
) -> None:
    repo = f"legacy-{unique}"
    good = create(client, "legacy", repo, "1.0.0", tags={"stage": "prod"})
    bad_rows = {uuid.uuid4().hex: "[" * 300 + "]" * 300}  # Postgres keeps any valid JSON
    if not database_url.startswith("postgresql"):  # SQLite keeps any text at all
        bad_rows[uuid.uuid4().hex] = '{"cut off": '
        bad_rows[uuid.uuid4().hex] = '{"x": NaN}'
        bad_rows[uuid.uuid4().hex] = '{"x": "\\ud800"}'
    for number, (uid, tags) in enumerate(bad_rows.items()):
        _insert_raw(database_url, uid, repo, f"0.{number}.0", tags)
    if not database_url.startswith("postgresql"):
        _insert_raw(database_url, uuid.uuid4().hex, repo, 7, "{}")  # a number as version

    listing = client.post("/opsml/cards/list", json={"registry_type": "data"})
    assert listing.status_code == 200, listing.text
    cards = list_cards(client, repository=repo)
    assert cards[0]["uid"] == good["uid"] and cards[0]["tags"] == {"stage": "prod"}
    assert {c["uid"]: c["tags"] for c in cards if c["uid"] in bad_rows} == dict.fromkeys(bad_rows)
    for uid in bad_rows:
        [one] = list_cards(client, uid=uid)
        assert one["tags"] is None and one["name"] == "legacy"
    assert list_cards(client, name="legacy", repository=repo, limit=1)[0]["uid"] == good["uid"]
