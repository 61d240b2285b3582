"""Local-storage pre-signed URLs: served by us, refused when tampered, expired or misused."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi.testclient import TestClient

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
