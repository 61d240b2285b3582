"""The card routes as the opsml client drives them, on SQLite and on Postgres."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from app.db.engine import build_engine
from app.db.tables import VersionClaim
from app.deps import get_card_service
from app.services.cards import (
    CLAIM_TTL_US,
    ERR_CARD_VERSION,
    ERR_DUPLICATE_VERSION,
    ERR_NO_CARD,
    CardService,
)
from app.services.records import ERR_REQUIRED, ERR_UNKNOWN_FIELDS
from app.settings import Settings
from tests.app.helpers import card_record, create, list_cards, next_version, register


def test_registry_table_names_every_registry(client: TestClient) -> None:
    for registry, table in [
        ("data", "OPSML_DATA_REGISTRY"),
        ("MODEL", "OPSML_MODEL_REGISTRY"),
        ("run", "OPSML_RUN_REGISTRY"),
        ("project", "OPSML_PROJECT_REGISTRY"),
        ("audit", "OPSML_AUDIT_REGISTRY"),
        ("pipeline", "OPSML_PIPELINE_REGISTRY"),
    ]:
        response = client.get("/opsml/registry/table", params={"registry_type": registry})
        assert response.json() == {"table_name": table}


def test_unknown_registry_is_a_clear_400(client: TestClient) -> None:
    response = client.get("/opsml/registry/table", params={"registry_type": "feature"})
    assert response.status_code == 400
    assert "Unknown registry type 'feature'" in response.json()["detail"]
    response = client.post("/opsml/cards/list", json={"registry_type": "nope"})
    assert response.status_code == 400


def test_register_list_update_delete_round_trip(client: TestClient, unique: str) -> None:
    repo, name = f"repo-{unique}", "iris-data"
    uid_check = client.post("/opsml/cards/uid", json={"uid": "None", "registry_type": "data"})
    assert uid_check.json() == {"uid_exists": False}
    record = register(client, name, repo, data_type="pandas")
    assert record["version"] == "1.0.0"
    assert client.post(
        "/opsml/cards/uid", json={"uid": record["uid"], "registry_type": "data"}
    ).json() == {"uid_exists": True}

    [listed] = list_cards(client, uid=record["uid"], limit=1)
    assert listed["name"] == name and listed["repository"] == repo and listed["version"] == "1.0.0"
    assert listed["data_type"] == "pandas" and listed["app_env"] == "development"
    assert len(listed["date"]) == 10  # the server fills YYYY-MM-DD

    updated = {**record, "contact": "new@example.com", "tags": {"stage": "prod"}}
    response = client.post("/opsml/cards/update", json={"card": updated, "registry_type": "data"})
    assert response.json() == {"updated": True}
    [listed] = list_cards(client, uid=record["uid"])
    assert listed["contact"] == "new@example.com" and listed["tags"] == {"stage": "prod"}
    assert list_cards(client, repository=repo, tags={"stage": "prod"})[0]["uid"] == record["uid"]
    assert list_cards(client, repository=repo, tags={"stage": "dev"}) == []

    response = client.post(
        "/opsml/cards/delete",
        json={
            "card": {"uid": record["uid"], "name": name, "version": "1.0.0"},
            "registry_type": "data",
        },
    )
    assert response.json() == {"deleted": True}
    assert list_cards(client, uid=record["uid"]) == []


def test_versions_follow_the_protocol_rules(client: TestClient, unique: str) -> None:
    repo = f"repo-{unique}"
    # Each case starts from {1.0.0}; a fresh name per case, since answers are held (below).
    for version_type, expected in (("minor", "1.1.0"), ("major", "2.0.0"), ("patch", "1.0.1")):
        name = f"from-one-{version_type}"
        assert register(client, name, repo)["version"] == "1.0.0"
        assert next_version(client, name, repo, version_type) == expected
    register(client, "two", repo)
    register(client, "two", repo)  # {1.0.0, 1.1.0}
    assert register(client, "two", repo, "patch")["version"] == "1.1.1"
    assert register(client, "n", repo, supplied="3.1")["version"] == "3.1.0"
    assert next_version(client, "p", repo, "pre") == "1.0.0-rc.1"
    assert next_version(client, "b", repo, "build") == "1.0.0+build.1"
    assert next_version(client, "q", repo, "pre_build") == "1.0.0-rc.1+build.1"
    register(client, "rc", repo, "pre")  # 1.0.0-rc.1 and no final release yet
    assert next_version(client, "rc", repo, "minor") == "1.0.0"


def test_a_version_handed_out_is_not_handed_out_again(client: TestClient, unique: str) -> None:
    repo = f"repo-{unique}"
    first = next_version(client, "held", repo)
    second = next_version(client, "held", repo)
    assert (first, second) == ("1.0.0", "1.1.0")
    # The first answer is still usable by the client it was given to.
    response = client.post(
        "/opsml/cards/create",
        json={"card": card_record("held", repo, first), "registry_type": "data"},
    )
    assert response.status_code == 200, response.text


def test_concurrent_version_requests_get_distinct_versions(client: TestClient, unique: str) -> None:
    repo = f"repo-{unique}"
    with ThreadPoolExecutor(max_workers=8) as pool:
        versions = list(pool.map(lambda _: next_version(client, "race", repo), range(16)))
    assert len(set(versions)) == 16, sorted(versions)


def test_duplicate_version_is_a_409_and_no_second_row(client: TestClient, unique: str) -> None:
    repo = f"repo-{unique}"
    first = register(client, "dup", repo)
    clash = card_record("dup", repo, first["version"])
    response = client.post("/opsml/cards/create", json={"card": clash, "registry_type": "data"})
    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]
    assert len(list_cards(client, name="dup", repository=repo)) == 1


def test_unknown_card_field_is_a_400_naming_it(client: TestClient, unique: str) -> None:
    record = card_record("x", f"repo-{unique}", "1.0.0", favourite_colour="blue")
    response = client.post("/opsml/cards/create", json={"card": record, "registry_type": "data"})
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail.startswith(ERR_UNKNOWN_FIELDS.split("{")[0]) and "favourite_colour" in detail


def test_wrong_field_types_are_400_not_500(client: TestClient, unique: str) -> None:
    for bad in ({"timestamp": "yesterday"}, {"name": 7}, {"contact": "x" * 500}):
        record = {**card_record("x", f"repo-{unique}", "1.0.0"), **bad}
        response = client.post(
            "/opsml/cards/create", json={"card": record, "registry_type": "data"}
        )
        assert response.status_code == 400, (bad, response.text)


def test_malformed_json_is_a_422(client: TestClient) -> None:
    response = client.post(
        "/opsml/cards/list", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


def test_caret_does_not_match_ten(client: TestClient, unique: str) -> None:
    repo = f"repo-{unique}"
    for version in ("1.0.0", "1.2.0", "10.0.0"):
        create(client, "semver", repo, version)
    [top] = list_cards(client, name="semver", repository=repo, version="^1")
    assert top["version"] == "1.2.0"
    assert [
        c["version"] for c in list_cards(client, name="semver", repository=repo, version="1.*")
    ] == ["1.2.0", "1.0.0"]
    [tilde] = list_cards(client, name="semver", repository=repo, version="~1.0")
    assert tilde["version"] == "1.0.0"


def test_list_orders_by_semver_and_can_drop_release_candidates(
    client: TestClient, unique: str
) -> None:
    repo = f"repo-{unique}"
    for version in ("1.0.0", "1.10.0", "1.9.0", "2.0.0-rc.1"):
        create(client, "order", repo, version)
    versions = [c["version"] for c in list_cards(client, name="order", repository=repo)]
    assert versions == ["2.0.0-rc.1", "1.10.0", "1.9.0", "1.0.0"]
    versions = [
        c["version"]
        for c in list_cards(client, name="order", repository=repo, ignore_release_candidates=True)
    ]
    assert versions == ["1.10.0", "1.9.0", "1.0.0"]
    assert len(list_cards(client, name="order", repository=repo, limit=2)) == 2


def test_a_page_of_one_card_is_the_top_of_its_full_listing(client: TestClient, unique: str) -> None:
    # Registered out of version order (a patch to an old line comes last), so the newest rows
    # are not the highest versions; one version also exists in a second repository.
    repo, other = f"repo-{unique}", f"other-{unique}"
    for version in ("1.0.0", "2.1.0", "1.10.0", "2.0.0-rc.1", "1.2.0", "2.0.0", "1.10.1"):
        create(client, "paged", repo, version)
    create(client, "paged", other, "2.1.0")
    for filters in ({"repository": repo}, {}, {"repository": repo, "version": "1"}):
        full = [c["version"] for c in list_cards(client, name="paged", **filters)]
        for limit in range(1, len(full) + 2):
            page = list_cards(client, name="paged", limit=limit, **filters)
            assert [c["version"] for c in page] == full[:limit], (filters, limit)
            assert "opsml_server_all_versions" not in page[0]
    assert full == ["1.10.1", "1.10.0", "1.2.0", "1.0.0"]


def test_a_page_of_one_card_honours_every_other_filter(client: TestClient, unique: str) -> None:
    repo = f"repo-{unique}"
    create(client, "filtered", repo, "1.0.0", tags={"stage": "prod"}, contact="a@example.com")
    create(client, "filtered", repo, "2.0.0", tags={"stage": "dev"}, contact="b@example.com")

    def latest(**filters: Any) -> list[str]:
        cards = list_cards(client, name="filtered", repository=repo, limit=1, **filters)
        return [c["version"] for c in cards]

    assert latest() == ["2.0.0"]
    assert latest(tags={"stage": "prod"}) == ["1.0.0"]
    assert latest(query_terms={"contact": "a@example.com"}) == ["1.0.0"]
    assert latest(version="1") == ["1.0.0"]
    assert latest(max_date="2000-01-01") == []


def test_repositories_and_names(client: TestClient, unique: str) -> None:
    repo = f"repo-{unique}"
    register(client, "b-card", repo)
    register(client, "a-card", repo)
    repos = client.get("/opsml/cards/repositories", params={"registry_type": "data"}).json()
    assert repo in repos["repositories"] and repos["repositories"] == sorted(repos["repositories"])
    names = client.get("/opsml/cards/names", params={"registry_type": "data", "repository": repo})
    assert names.json() == {"names": ["a-card", "b-card"]}


def test_bad_max_date_is_a_400(client: TestClient) -> None:
    response = client.post("/opsml/cards/list", json={"registry_type": "data", "max_date": "May 1"})
    assert response.status_code == 400
    assert "YYYY-MM-DD" in response.json()["detail"]


def test_a_version_that_is_not_semver_is_a_400(client: TestClient, unique: str) -> None:
    record = card_record("x", f"repo-{unique}", "banana")
    response = client.post("/opsml/cards/create", json={"card": record, "registry_type": "data"})
    assert response.status_code == 400
    assert "'banana' is not a semantic version" in response.json()["detail"]


def _update(client: TestClient, card: dict[str, Any], registry: str = "data") -> Any:
    return client.post("/opsml/cards/update", json={"card": card, "registry_type": registry})


def test_an_update_keeps_the_rules_of_a_create(client: TestClient, unique: str) -> None:
    repo = f"repo-{unique}"
    first = create(client, "upd", repo, "1.0.0")
    second = create(client, "upd", repo, "2.0.0")
    # Onto a version that exists: 409, and no second row at 1.0.0.
    response = _update(client, {**second, "version": "1.0.0"})
    assert response.status_code == 409
    assert response.json()["detail"] == ERR_DUPLICATE_VERSION.format(
        registry="data", name="upd", repository=repo, version="1.0.0"
    )
    versions = sorted(c["version"] for c in list_cards(client, name="upd", repository=repo))
    assert versions == ["1.0.0", "2.0.0"]
    # Onto another card's version by renaming it.
    other = create(client, "other", repo, "2.0.0")
    assert _update(client, {**other, "name": "UPD"}).status_code == 409
    for bad, message in (
        ({"version": "banana"}, ERR_CARD_VERSION.format(version="banana")),
        ({"version": ""}, ERR_REQUIRED.format(field="version")),
        ({"name": ""}, ERR_REQUIRED.format(field="name")),
        ({"name": " "}, ERR_REQUIRED.format(field="name")),
        ({"repository": None}, ERR_REQUIRED.format(field="repository")),
    ):
        response = _update(client, {**first, **bad})
        assert (response.status_code, response.json()["detail"]) == (400, message), bad
    [stored] = list_cards(client, uid=first["uid"])
    assert (stored["name"], stored["repository"], stored["version"]) == ("upd", repo, "1.0.0")


def test_an_update_releases_the_old_version(client: TestClient, unique: str) -> None:
    repo = f"repo-{unique}"
    card = create(client, "moved", repo, "1.0.0")
    response = _update(client, {**card, "version": "1.5.0"})
    assert response.status_code == 200, response.text
    # 1.0.0 is free again: a new card can take it, and cards/version accounts for 1.5.0.
    create(client, "moved", repo, "1.0.0")
    assert next_version(client, "moved", repo, "minor") == "1.6.0"
    assert create(client, "moved", repo, "1.6.0")["version"] == "1.6.0"
    # A second move of the same card releases its current version, not an older one.
    assert _update(client, {**card, "version": "3.0.0"}).status_code == 200
    create(client, "moved", repo, "1.5.0")
    response = client.post(
        "/opsml/cards/create",
        json={"card": card_record("moved", repo, "3.0.0"), "registry_type": "data"},
    )
    assert response.status_code == 409


def test_an_update_without_identity_fields_keeps_them(client: TestClient, unique: str) -> None:
    repo = f"repo-{unique}"
    card = create(client, "partial", repo, "1.0.0")
    response = _update(client, {"uid": card["uid"], "contact": "new@example.com"})
    assert response.status_code == 200, response.text
    [stored] = list_cards(client, uid=card["uid"])
    assert (stored["version"], stored["contact"]) == ("1.0.0", "new@example.com")
    missing = _update(client, {"uid": "no-such-card", "contact": "x"})
    assert (missing.status_code, missing.json()["detail"]) == (
        404,
        ERR_NO_CARD.format(registry="data", uid="no-such-card"),
    )


def test_an_update_racing_a_create_of_its_version_leaves_one_row(
    client: TestClient, unique: str
) -> None:
    repo = f"repo-{unique}"
    for trial in range(15):
        name = f"race-{trial}"
        moving = create(client, name, repo, "1.0.0")
        fresh = card_record(name, repo, "2.0.0")
        with ThreadPoolExecutor(max_workers=2) as pool:
            updated = pool.submit(_update, client, {**moving, "version": "2.0.0"})
            created = pool.submit(
                client.post, "/opsml/cards/create", json={"card": fresh, "registry_type": "data"}
            )
            statuses = sorted([updated.result().status_code, created.result().status_code])
        assert statuses == [200, 409], (trial, updated.result().text, created.result().text)
        versions = sorted(c["version"] for c in list_cards(client, name=name, repository=repo))
        assert versions in (["1.0.0", "2.0.0"], ["2.0.0"]), (trial, versions)
        assert versions.count("2.0.0") == 1


def _claims(database_url: str, repository: str, rows: list[dict[str, Any]] | None = None) -> set:
    """Insert version claims directly, then return the names claimed in the repository."""
    engine = build_engine(Settings(OPSML_TRACKING_URI=database_url, OPSML_STORAGE_URI="/tmp"))
    with engine.begin() as connection:
        if rows:
            connection.execute(insert(VersionClaim), rows)
        names = set(
            connection.scalars(
                select(VersionClaim.name).where(VersionClaim.repository == repository)
            )
        )
    engine.dispose()
    return names


def _claim_row(name: str, repository: str, age_us: int, uid: str | None = None) -> dict[str, Any]:
    return {
        "registry_type": "data",
        "name": name,
        "repository": repository,
        "version": "1.0.0",
        "uid": uid,
        "claimed_at": time.time_ns() // 1000 - age_us,
    }


def test_unused_version_claims_do_not_pile_up(
    make_client: Any, database_url: str, unique: str
) -> None:
    repo = f"repo-{unique}"
    client = make_client()
    stale = CLAIM_TTL_US + 1_000_000
    rows = [_claim_row(f"gone-{i}", repo, stale) for i in range(200)]
    rows += [_claim_row("fresh", repo, 0), _claim_row("taken", repo, stale, uid="a-card")]
    assert len(_claims(database_url, repo, rows)) == 202
    # The first cards/version after start sweeps the whole table, whatever name it asks for.
    next_version(client, "asked", repo)
    assert _claims(database_url, repo) == {"fresh", "taken", "asked"}

    # Later sweeps come once per interval (here: every request), so the table stays bounded.
    app = client.app  # type: ignore[attr-defined]
    eager = CardService(app.state.sessions, app.state.reads.kw["bind"], "development", 0.0)
    app.dependency_overrides[get_card_service] = lambda: eager
    for round_ in range(3):
        rows = [_claim_row(f"gone-{round_}-{i}", repo, stale) for i in range(100)]
        assert len(_claims(database_url, repo, rows)) == 103
        next_version(client, "asked", repo)
        assert _claims(database_url, repo) == {"fresh", "taken", "asked"}
