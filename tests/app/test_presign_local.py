"""Local-storage pre-signed URLs: served by us, refused when tampered, expired or misused."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from fastapi.testclient import TestClient

from app.errors import ConfigError
from app.settings import ERR_EXTERNAL_URL, load_settings
from app.storage.presign import BAD_PUT_EXPIRY, SIGNED_ROUTE
from app.storage.presign import MAX_PUT_EXPIRES_S as MAX_PUT
from app.storage.store import ERR_ALREADY_STORED

ROOT = "opsml-root:/OPSML_DATA_REGISTRY/repo/data/v1.0.0"


def _signed(
    client: TestClient, path: str, method: str = "GET", expires: int = 60
) -> dict[str, str]:
    response = client.get(
        "/opsml/files/presign", params={"path": path, "method": method, "expires": expires}
    )
    assert response.status_code == 200, response.text
    query = parse_qs(urlsplit(response.json()["url"]).query)
    return {key: values[0] for key, values in query.items()}


def test_signed_url_works_without_login(make_client) -> None:
    client = make_client(
        login=True, OPSML_USERNAME="u", OPSML_PASSWORD="p", OPSML_SIGNING_KEY="k" * 32
    )
    client.post(
        "/opsml/files/upload",
        headers={"write_path": f"{ROOT}/a.txt"},
        files={"file": ("a.txt", b"hello")},
        auth=("u", "p"),
    )
    assert client.get("/opsml/files/presign", params={"path": f"{ROOT}/a.txt"}).status_code == 401
    query = _signed_with_auth(client, f"{ROOT}/a.txt")
    response = client.get(f"/opsml/files/signed?{urlencode(query)}")  # no credentials
    assert response.status_code == 200 and response.content == b"hello"


def _signed_with_auth(client: TestClient, path: str) -> dict[str, str]:
    response = client.get("/opsml/files/presign", params={"path": path}, auth=("u", "p"))
    query = parse_qs(urlsplit(response.json()["url"]).query)
    return {key: values[0] for key, values in query.items()}


def _tampered(signature: str) -> str:
    # Always a different string (a fixed suffix would equal one signature in 4,096).
    return ("B" if signature[0] == "A" else "A") + signature[1:]


def test_tampered_expired_or_misused_tokens_are_refused(client: TestClient) -> None:
    client.post(
        "/opsml/files/upload",
        headers={"write_path": f"{ROOT}/a.txt"},
        files={"file": ("a.txt", b"hello")},
    )
    client.post(
        "/opsml/files/upload",
        headers={"write_path": f"{ROOT}/b.txt"},
        files={"file": ("b.txt", b"other")},
    )
    good = _signed(client, f"{ROOT}/a.txt")
    assert client.get(f"/opsml/files/signed?{urlencode(good)}").content == b"hello"

    for tampered in (
        {**good, "path": good["path"].replace("a.txt", "b.txt")},
        {**good, "expires": str(int(good["expires"]) + 3600)},
        {**good, "signature": _tampered(good["signature"])},
    ):
        response = client.get(f"/opsml/files/signed?{urlencode(tampered)}")
        assert response.status_code == 403, tampered
    expired = {**good, "expires": "1000"}
    assert client.get(f"/opsml/files/signed?{urlencode(expired)}").status_code == 403
    # A GET token cannot be used to write.
    assert client.put(f"/opsml/files/signed?{urlencode(good)}", content=b"x").status_code == 403
    assert client.get("/opsml/files/download", params={"path": f"{ROOT}/a.txt"}).content == b"hello"


def test_signed_put_writes_only_a_complete_body(client: TestClient) -> None:
    query = _signed(client, f"{ROOT}/put.bin", method="PUT")
    response = client.put(f"/opsml/files/signed?{urlencode(query)}", content=b"payload")
    assert response.status_code == 200, response.text
    assert (
        client.get("/opsml/files/download", params={"path": f"{ROOT}/put.bin"}).content
        == b"payload"
    )


def test_presign_put_needs_the_prod_token_in_production(make_client) -> None:
    client = make_client(APP_ENV="production", OPSML_PROD_TOKEN="tok")
    params = {"path": f"{ROOT}/x.bin", "method": "PUT"}
    assert client.get("/opsml/files/presign", params=params).status_code == 403
    ok = client.get("/opsml/files/presign", params=params, headers={"X-Prod-Token": "tok"})
    assert ok.status_code == 200


def _presigned_url(client: TestClient, path: str, method: str = "GET", **kwargs) -> str:
    response = client.get(
        "/opsml/files/presign", params={"path": path, "method": method, "expires": 60}, **kwargs
    )
    assert response.status_code == 200, response.text
    url: str = response.json()["url"]
    return url


@pytest.mark.parametrize(
    "headers",
    [
        {"host": "evil.example"},
        {"host": "evil.example:8443"},
        {"x-forwarded-host": "evil.example", "x-forwarded-proto": "https"},
        {"forwarded": "host=evil.example;proto=https"},
    ],
)
def test_signed_urls_ignore_the_host_the_client_claims(
    client: TestClient, headers: dict[str, str]
) -> None:
    for method in ("GET", "PUT"):
        url = _presigned_url(client, f"{ROOT}/a.txt", method, headers=headers)
        # TestClient's connection arrives on testserver:80, the address the server listens on.
        assert url.startswith(f"http://testserver{SIGNED_ROUTE}?"), url
        assert "evil" not in url


def test_signed_urls_use_the_configured_external_url(make_client) -> None:
    client = make_client(OPSML_EXTERNAL_URL="https://opsml.example.com/registry/")
    url = _presigned_url(client, f"{ROOT}/a.txt", headers={"host": "evil.example"})
    assert url.startswith(f"https://opsml.example.com/registry{SIGNED_ROUTE}?"), url


@pytest.mark.parametrize(
    "value",
    ["opsml.example.com", "ftp://opsml.example.com", "https://", "https://h/?q=1", "https://u:p@h"],
)
def test_a_bad_external_url_stops_start_up_naming_the_variable(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSML_EXTERNAL_URL", value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert raised.value.message.startswith("OPSML_EXTERNAL_URL: ")
    assert ERR_EXTERNAL_URL in raised.value.message


def test_put_urls_last_an_hour_at_most(client: TestClient) -> None:
    params = {"path": f"{ROOT}/x.bin", "method": "PUT"}
    too_long = client.get("/opsml/files/presign", params={**params, "expires": MAX_PUT + 1})
    assert too_long.status_code == 400 and too_long.json() == {"detail": BAD_PUT_EXPIRY}
    week = client.get("/opsml/files/presign", params={**params, "expires": 7 * 24 * 3600})
    assert week.status_code == 400 and week.json() == {"detail": BAD_PUT_EXPIRY}
    ok = client.get("/opsml/files/presign", params={**params, "expires": MAX_PUT})
    assert ok.status_code == 200 and ok.json()["expires_in"] == MAX_PUT
    # GET URLs may still last up to the stores' 7-day ceiling.
    get = client.get(
        "/opsml/files/presign", params={"path": f"{ROOT}/x.bin", "expires": 7 * 24 * 3600}
    )
    assert get.status_code == 200


def test_a_used_put_url_cannot_be_replayed(client: TestClient) -> None:
    query = _signed(client, f"{ROOT}/once.bin", method="PUT")
    first = client.put(f"/opsml/files/signed?{urlencode(query)}", content=b"original")
    assert first.status_code == 200, first.text
    for body in (b"replayed", b"original"):
        replay = client.put(f"/opsml/files/signed?{urlencode(query)}", content=body)
        assert replay.status_code == 409, replay.text
        assert replay.json() == {"detail": ERR_ALREADY_STORED.format(path=f"{ROOT}/once.bin")}
    stored = client.get("/opsml/files/download", params={"path": f"{ROOT}/once.bin"})
    assert stored.content == b"original"
    # A PUT URL for an artifact that already exists cannot replace it either.
    client.post(
        "/opsml/files/upload",
        headers={"write_path": f"{ROOT}/kept.bin"},
        files={"file": ("kept.bin", b"kept")},
    )
    other = _signed(client, f"{ROOT}/kept.bin", method="PUT")
    assert client.put(f"/opsml/files/signed?{urlencode(other)}", content=b"x").status_code == 409
    assert client.get("/opsml/files/download", params={"path": f"{ROOT}/kept.bin"}).content == (
        b"kept"
    )


def test_head_answers_download_and_signed_urls(client: TestClient) -> None:
    payload = b"0123456789" * 1000
    client.post(
        "/opsml/files/upload",
        headers={"write_path": f"{ROOT}/h.bin"},
        files={"file": ("h.bin", payload)},
    )
    head = client.head("/opsml/files/download", params={"path": f"{ROOT}/h.bin"})
    assert head.status_code == 200, head.text
    assert head.headers["content-length"] == str(len(payload))
    assert head.headers["content-type"] == "application/octet-stream"
    assert head.content == b""
    for missing in (f"{ROOT}/nope.bin", ROOT):  # a missing file, a folder
        gone = client.head("/opsml/files/download", params={"path": missing})
        assert gone.status_code == 404
    escape = client.head("/opsml/files/download", params={"path": "opsml-root:/../x"})
    assert escape.status_code == 400

    good = _signed(client, f"{ROOT}/h.bin")
    signed = client.head(f"/opsml/files/signed?{urlencode(good)}")
    assert signed.status_code == 200, signed.text
    assert signed.headers["content-length"] == str(len(payload))
    bad = {**good, "signature": _tampered(good["signature"])}
    assert client.head(f"/opsml/files/signed?{urlencode(bad)}").status_code == 403
    put_url = _signed(client, f"{ROOT}/h.bin", method="PUT")
    assert client.head(f"/opsml/files/signed?{urlencode(put_url)}").status_code == 403
