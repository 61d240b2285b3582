"""Login (run_app(login=True)) and the production write token."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.auth import ERR_BAD_LOGIN, ERR_LOGIN_UNSET, ERR_PROD_TOKEN_UNSET
from app.errors import ConfigError
from app.main import create_app
from app.route_access import (
    ERR_BAD_PROD_TOKEN,
    ERR_NO_RULE,
    ROUTE_ACCESS,
    Access,
    check_every_route_has_a_rule,
    served_routes,
)
from tests.app.helpers import card_record

USER, PASSWORD = "alice", "s3cret-pw"


@pytest.fixture
def locked(make_client) -> TestClient:
    return make_client(login=True, OPSML_USERNAME=USER, OPSML_PASSWORD=PASSWORD)


@pytest.mark.parametrize(
    "route",
    [
        "/opsml/registry/table?registry_type=data",
        "/docs",
        "/openapi.json",
        "/redoc",
        "/opsml/files/list?path=opsml-root:/",
    ],
)
def test_login_guards_every_route_including_docs(locked: TestClient, route: str) -> None:
    assert locked.get(route).status_code == 401
    assert locked.get(route, auth=("alice", "wrong")).status_code == 401
    assert locked.get(route, auth=("mallory", PASSWORD)).status_code == 401
    response = locked.get(route, auth=(USER, PASSWORD))
    assert response.status_code == 200, response.text


def test_rejection_says_what_to_send_and_never_echoes_secrets(locked: TestClient) -> None:
    response = locked.get("/opsml/cards/repositories?registry_type=data", auth=(USER, "guess"))
    assert response.json() == {"detail": ERR_BAD_LOGIN}
    assert response.headers["www-authenticate"].startswith("Basic")
    assert PASSWORD not in response.text and "guess" not in response.text


@pytest.mark.parametrize("route", ["/livez", "/readyz", "/opsml/healthcheck", "/metrics"])
def test_probes_and_metrics_stay_open(locked: TestClient, route: str) -> None:
    assert locked.get(route).status_code == 200


def test_login_without_credentials_configured_refuses_to_start(make_settings) -> None:
    with pytest.raises(ConfigError, match=ERR_LOGIN_UNSET):
        create_app(make_settings(), login=True)


def test_production_without_token_refuses_to_start(make_settings) -> None:
    with pytest.raises(ConfigError, match=ERR_PROD_TOKEN_UNSET):
        create_app(make_settings(APP_ENV="production"), login=False)


# opsml 2.2.4's verify_token (opsml/app/core/dependencies.py): what its client shows users.
REFERENCE_PROD_REFUSAL = "Cannot perform write operation on prod resource without token"


def test_production_refusal_has_the_reference_wording(make_client, unique: str) -> None:
    client = make_client(APP_ENV="production", OPSML_PROD_TOKEN="prod-token-1")
    body = {"card": card_record("x", f"repo-{unique}", "1.0.0"), "registry_type": "data"}
    refused = client.post("/opsml/cards/create", json=body, headers={"X-Prod-Token": "staging"})
    assert refused.json() == {"detail": REFERENCE_PROD_REFUSAL}
    assert ERR_BAD_PROD_TOKEN == REFERENCE_PROD_REFUSAL


def test_production_writes_need_the_prod_token(make_client, unique: str) -> None:
    client = make_client(APP_ENV="production", OPSML_PROD_TOKEN="prod-token-1")
    body = {"card": card_record("x", f"repo-{unique}", "1.0.0"), "registry_type": "data"}
    response = client.post("/opsml/cards/create", json=body)
    assert response.status_code == 403 and response.json() == {"detail": ERR_BAD_PROD_TOKEN}
    response = client.post("/opsml/cards/create", json=body, headers={"X-Prod-Token": "staging"})
    assert response.status_code == 403
    response = client.get("/opsml/files/delete", params={"path": "opsml-root:/x"})
    assert response.status_code == 403
    response = client.post(
        "/opsml/cards/create", json=body, headers={"X-Prod-Token": "prod-token-1"}
    )
    assert response.status_code == 200
    # Reads never need the token.
    listed = client.post(
        "/opsml/cards/list", json={"registry_type": "data", "uid": body["card"]["uid"]}
    )
    assert listed.status_code == 200 and listed.json()["cards"][0]["app_env"] == "production"


TOKEN = "prod-token-1"


@pytest.fixture
def production(make_client) -> TestClient:
    return make_client(APP_ENV="production", OPSML_PROD_TOKEN=TOKEN)


def _served(client: TestClient) -> set[tuple[str, str]]:
    return set(served_routes(client.app.routes))  # type: ignore[attr-defined]


def test_every_route_has_exactly_one_explicit_rule(production: TestClient) -> None:
    # A new route without a rule fails here (and stops create_app); a rule for a route that
    # no longer exists fails here too.
    assert _served(production) == set(ROUTE_ACCESS)


def test_a_route_without_a_rule_stops_the_app(production: TestClient) -> None:
    @production.app.get("/opsml/unguarded")  # type: ignore[attr-defined]
    def unguarded() -> dict[str, str]:
        return {}

    with pytest.raises(RuntimeError) as raised:
        check_every_route_has_a_rule(production.app.routes)  # type: ignore[attr-defined]
    assert str(raised.value) == ERR_NO_RULE.format(routes="GET /opsml/unguarded")


def _call(client: TestClient, verb: str, path: str, token: str | None, **params: str):
    headers = {"X-Prod-Token": token} if token is not None else {}
    query = {"registry_type": "data", "path": "opsml-root:/OPSML_DATA_REGISTRY/x", **params}
    body = {} if verb in ("POST", "PUT") else None
    return client.request(verb, path, headers=headers, params=query, json=body)


WRITES = sorted(key for key, rule in ROUTE_ACCESS.items() if rule is Access.WRITE)
READS = sorted(key for key, rule in ROUTE_ACCESS.items() if rule is Access.READ)


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_production_write_routes_need_the_token(
    production: TestClient, method: str, path: str
) -> None:
    for token in (None, "", "staging", TOKEN + "x"):
        response = _call(production, method, path, token)
        assert (response.status_code, response.json()) == (403, {"detail": ERR_BAD_PROD_TOKEN})
    assert _call(production, method, path, TOKEN).status_code != 403


@pytest.mark.parametrize(("method", "path"), READS)
def test_production_reads_need_no_token(production: TestClient, method: str, path: str) -> None:
    # The client sends its default token ("staging") on every request, reads included.
    for token in (None, "staging"):
        response = _call(production, method, path, token)
        assert response.status_code != 403, response.text


def test_a_presigned_put_url_needs_the_token(production: TestClient) -> None:
    path = "/opsml/files/presign"
    response = _call(production, "GET", path, "staging", method="PUT")
    assert (response.status_code, response.json()) == (403, {"detail": ERR_BAD_PROD_TOKEN})
    assert _call(production, "GET", path, TOKEN, method="PUT").status_code == 200
    assert _call(production, "GET", path, None, method="GET").status_code == 200


def test_the_rules_enforce_nothing_outside_production(client: TestClient) -> None:
    for method, path in WRITES:
        assert _call(client, method, path, None).status_code != 403, (method, path)
