"""Pre-signed URLs fetched with plain httpx from each emulator, and refused when they should be."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from app.errors import AuthError, ConfigError, InvalidPathError, InvalidRequestError
from app.storage.backends import StorageLocation, open_filesystem
from app.storage.credentials import Credentials, Provider
from app.storage.presign import (
    BAD_EXPIRY,
    BAD_METHOD,
    OUTSIDE_ROOT,
    SIGNATURE_EXPIRED,
    SIGNATURE_INVALID,
    SIGNED_ROUTE,
    presign,
    sign_local,
    verify_local,
    verify_signed_request,
)
from tests.support.emulators import StorageEmulator

KEY = b"k" * 32
PAYLOAD = b"pre-signed bytes \x00\x01\x02" * 1000


@pytest.fixture
def location(storage_backend: StorageEmulator) -> StorageLocation:
    return open_filesystem(storage_backend.storage_uri, storage_backend.env)


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def _fetch_local(location: StorageLocation, url: str) -> bytes:
    # What the lead's GET /opsml/files/signed route does with the query.
    query = _query(url)
    path = verify_signed_request(
        location, query["path"], query["method"], query["expires"], query["signature"]
    )
    data: bytes = location.fs.cat(path)
    return data


# ------------------------------------------------------------------------ local HMAC tokens


def test_local_token_round_trip() -> None:
    token = sign_local("a/b.bin", "GET", 2_000_000_000, KEY)
    verify_local("a/b.bin", "GET", 2_000_000_000, token, KEY, now=1_000)


@pytest.mark.parametrize(
    ("path", "method", "expires_at", "key"),
    [
        ("a/c.bin", "GET", 2_000_000_000, KEY),  # another path
        ("a/b.bin", "PUT", 2_000_000_000, KEY),  # another method
        ("a/b.bin", "GET", 2_000_000_001, KEY),  # a later expiry
        ("a/b.bin", "GET", 2_000_000_000, b"x" * 32),  # another key (another worker)
    ],
    ids=["path", "method", "expiry", "key"],
)
def test_local_tampered_token_is_refused(
    path: str, method: str, expires_at: int, key: bytes
) -> None:
    token = sign_local("a/b.bin", "GET", 2_000_000_000, KEY)
    with pytest.raises(AuthError) as caught:
        verify_local(path, method, expires_at, token, key, now=1_000)
    assert caught.value.message == SIGNATURE_INVALID
    assert caught.value.forbidden


def test_local_garbled_signature_is_refused() -> None:
    with pytest.raises(AuthError, match=SIGNATURE_INVALID):
        verify_local("a", "GET", 2_000_000_000, "ü-not-base64", KEY, now=0)


def test_local_expired_token_is_refused() -> None:
    token = sign_local("a/b.bin", "GET", 1_000, KEY)
    verify_local("a/b.bin", "GET", 1_000, token, KEY, now=999)
    with pytest.raises(AuthError) as caught:
        verify_local("a/b.bin", "GET", 1_000, token, KEY, now=1_000)
    assert caught.value.message == SIGNATURE_EXPIRED


def test_local_presign_url_shape(tmp_path: Any) -> None:
    loc = open_filesystem(str(tmp_path), {"OPSML_SIGNING_KEY": "secret-key"})
    url = presign(loc, f"{loc.root}/x/y z.bin", "GET", 60, base_url="http://srv:3000/")
    assert url.startswith(f"http://srv:3000{SIGNED_ROUTE}?")
    query = _query(url)
    assert query["path"] == "x/y z.bin"  # relative: no server directory in the URL
    assert query["method"] == "GET"
    assert str(tmp_path) not in url
    assert "secret-key" not in url


def test_local_signed_request_checks_expiry_and_path(tmp_path: Any) -> None:
    loc = open_filesystem(str(tmp_path), {"OPSML_SIGNING_KEY": "secret-key"})
    past = datetime.now(UTC) - timedelta(hours=1)
    url = presign(loc, f"{loc.root}/a.bin", "GET", 60, now=past)
    query = _query(url)
    with pytest.raises(AuthError, match=SIGNATURE_EXPIRED):
        verify_signed_request(loc, query["path"], "GET", query["expires"], query["signature"])
    with pytest.raises(AuthError, match=SIGNATURE_INVALID):
        verify_signed_request(loc, query["path"], "GET", "not-a-number", query["signature"])
    escape = sign_local("../outside", "GET", 2_000_000_000, b"secret-key")
    with pytest.raises(InvalidPathError):
        verify_signed_request(loc, "../outside", "GET", 2_000_000_000, escape)


def test_workers_with_different_keys_disagree(tmp_path: Any) -> None:
    one = open_filesystem(str(tmp_path), {"OPSML_SIGNING_KEY": "worker-one"})
    two = open_filesystem(str(tmp_path), {"OPSML_SIGNING_KEY": "worker-two"})
    query = _query(presign(one, f"{one.root}/a.bin", "GET", 60))
    with pytest.raises(AuthError):
        verify_signed_request(two, query["path"], "GET", query["expires"], query["signature"])


# ------------------------------------------------------------------------- argument checks


def test_presign_rejects_bad_arguments(tmp_path: Any) -> None:
    loc = open_filesystem(str(tmp_path), {})
    with pytest.raises(InvalidRequestError, match=BAD_METHOD):
        presign(loc, f"{loc.root}/a", "DELETE", 60)  # type: ignore[arg-type]
    for expires in (0, -5, 8 * 24 * 3600):
        with pytest.raises(InvalidRequestError, match=BAD_EXPIRY):
            presign(loc, f"{loc.root}/a", "GET", expires)
    for outside in ("/etc/passwd", f"{loc.root}/../x", loc.root):
        with pytest.raises(InvalidPathError, match=OUTSIDE_ROOT):
            presign(loc, outside, "GET", 60)


# ------------------------------------------------------------------------- against emulators


def test_presigned_get_returns_the_bytes(location: StorageLocation) -> None:
    path = f"{location.root}/artifacts/model.onnx"
    if location.is_local:  # no auto_mkdir locally: the artifact writer makes the folders
        location.fs.makedirs(f"{location.root}/artifacts")
    location.fs.pipe(path, PAYLOAD)
    url = presign(location, path, "GET", 300)
    if location.is_local:
        assert _fetch_local(location, url) == PAYLOAD
        return
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200, response.text[:300]
    assert response.content == PAYLOAD


def test_presigned_put_stores_the_bytes(location: StorageLocation) -> None:
    path = f"{location.root}/uploads/data.parquet"
    url = presign(location, path, "PUT", 300)
    if location.is_local:
        query = _query(url)
        assert query["method"] == "PUT"
        verify_signed_request(location, query["path"], "PUT", query["expires"], query["signature"])
        return
    # Azure's Put Blob needs the blob type; the other stores ignore the header.
    headers = {"x-ms-blob-type": "BlockBlob"} if location.scheme == "abfs" else {}
    response = httpx.put(url, content=PAYLOAD, headers=headers, timeout=30)
    assert response.status_code in (200, 201), response.text[:300]
    location.fs.invalidate_cache()
    assert location.fs.cat(path) == PAYLOAD


# ------------------------------------------------------------------------- Azure enforcement


@pytest.fixture
def azure(azurite_blob: StorageEmulator) -> StorageLocation:
    fresh = azurite_blob.fresh()
    return open_filesystem(fresh.storage_uri, fresh.env)


def test_azure_expired_sas_is_refused(azure: StorageLocation) -> None:
    path = f"{azure.root}/old.bin"
    azure.fs.pipe(path, PAYLOAD)
    url = presign(azure, path, "GET", 60, now=datetime.now(UTC) - timedelta(hours=2))
    response = httpx.get(url, timeout=30)
    assert response.status_code == 403


def test_azure_tampered_sas_is_refused(azure: StorageLocation) -> None:
    path = f"{azure.root}/guarded.bin"
    azure.fs.pipe(path, PAYLOAD)
    url = presign(azure, path, "GET", 300)
    assert httpx.get(url, timeout=30).status_code == 200
    # A longer life with the old signature.
    later = (datetime.now(UTC) + timedelta(days=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert httpx.get(_with_query(url, se=later), timeout=30).status_code == 403
    # Another blob with the same signature.
    other = url.replace("guarded.bin", "other.bin")
    azure.fs.pipe(f"{azure.root}/other.bin", b"x")
    assert httpx.get(other, timeout=30).status_code == 403
    # A flipped signature.
    sig = _query(url)["sig"]
    flipped = base64.b64encode(bytes(b ^ 1 for b in base64.b64decode(sig))).decode()
    assert httpx.get(_with_query(url, sig=flipped), timeout=30).status_code == 403


def test_azure_read_sas_cannot_write(azure: StorageLocation) -> None:
    path = f"{azure.root}/read-only.bin"
    azure.fs.pipe(path, PAYLOAD)
    url = presign(azure, path, "GET", 300)
    response = httpx.put(url, content=b"overwrite", headers={"x-ms-blob-type": "BlockBlob"})
    assert response.status_code == 403
    assert azure.fs.cat(path) == PAYLOAD


# --------------------------------------------------------------------- keyless identities


class _FakeIdentity:
    valid = True
    token = "ya29.fake-access-token"
    service_account_email = "opsml@proj.iam.gserviceaccount.com"

    def refresh(self, request: Any) -> None:
        raise AssertionError("a valid identity must not be refreshed")


def test_gcs_keyless_identity_signs_through_iam(monkeypatch: pytest.MonkeyPatch) -> None:
    import google.auth
    from google.cloud.storage import _signing

    calls: list[tuple[Any, ...]] = []

    def fake_sign(message: Any, access_token: str, email: str, *args: Any) -> str:
        # Stands in for the IAM signBlob HTTP call (no network in tests).
        calls.append((access_token, email))
        return base64.b64encode(b"\x01\x02\x03").decode()

    from app.storage import presign as presign_module

    monkeypatch.setattr(google.auth, "default", lambda scopes=None: (_FakeIdentity(), "proj"))
    monkeypatch.setattr(presign_module, "_gcs_identity", None)
    monkeypatch.setattr(_signing, "_sign_message", fake_sign)
    loc = open_filesystem("gs://bucket/root", {"STORAGE_EMULATOR_HOST": "http://127.0.0.1:9"})
    url = presign(loc, "bucket/root/a.bin", "GET", 600)
    assert calls == [("ya29.fake-access-token", "opsml@proj.iam.gserviceaccount.com")]
    query = _query(url)
    assert query["X-Goog-Signature"] == "010203"
    assert query["X-Goog-Credential"].startswith("opsml@proj.iam.gserviceaccount.com/")
    assert url.startswith("http://127.0.0.1:9/bucket/root/a.bin?")


def test_gcs_signed_url_with_key_is_v4(fake_gcs: StorageEmulator) -> None:
    loc = open_filesystem(fake_gcs.storage_uri, fake_gcs.env)
    url = presign(loc, f"{loc.root}/k.bin", "PUT", 900)
    query = _query(url)
    assert query["X-Goog-Algorithm"] == "GOOG4-RSA-SHA256"
    assert query["X-Goog-Expires"] == "900"
    assert query["X-Goog-Credential"].startswith("opsml-test@")


def test_azure_user_delegation_sas(monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.identity import ClientSecretCredential
    from azure.storage.blob import BlobServiceClient, UserDelegationKey

    from app.storage import presign as presign_module

    built: list[Any] = []

    def fake_key(
        self: BlobServiceClient, key_start_time: datetime, key_expiry_time: datetime
    ) -> Any:
        built.append(self.credential)
        key = UserDelegationKey()
        key.signed_oid = "oid-1"
        key.signed_tid = "tid-1"
        key.signed_start = key_start_time.strftime("%Y-%m-%dT%H:%M:%SZ")
        key.signed_expiry = key_expiry_time.strftime("%Y-%m-%dT%H:%M:%SZ")
        key.signed_service = "b"
        key.signed_version = "2025-01-05"
        key.value = base64.b64encode(b"delegation-key").decode()
        return key

    monkeypatch.setattr(BlobServiceClient, "get_user_delegation_key", fake_key)
    monkeypatch.setattr(presign_module, "_delegation_keys", {})
    env = {
        "AZURE_STORAGE_ACCOUNT_NAME": "acct",
        "AZURE_STORAGE_TENANT_ID": "00000000-0000-0000-0000-000000000000",
        "AZURE_STORAGE_CLIENT_ID": "client",
        "AZURE_STORAGE_CLIENT_SECRET": "never-shown",
    }
    loc = open_filesystem("abfs://container/root", env)
    first = presign(loc, "container/root/a.bin", "GET", 300)
    second = presign(loc, "container/root/b.bin", "GET", 300)
    assert len(built) == 1  # the delegation key is reused
    assert isinstance(built[0], ClientSecretCredential)
    assert first.startswith("https://acct.blob.core.windows.net/container/root/a.bin?")
    assert _query(first)["skoid"] == "oid-1"
    assert "never-shown" not in first + second


def test_azure_connection_string_without_key_cannot_sign() -> None:
    creds = Credentials(
        provider=Provider.AZURE,
        source="AZURE_STORAGE_CONNECTION_STRING",
        azure_account_name="acct",
        azure_account_url="https://acct.blob.core.windows.net",
    )
    loc = open_filesystem("abfs://c/p", {"AZURE_STORAGE_ACCOUNT_NAME": "acct"})
    loc = StorageLocation(fs=loc.fs, root=loc.root, scheme=loc.scheme, credentials=creds)
    with pytest.raises(ConfigError, match="cannot pre-sign"):
        presign(loc, "c/p/x", "GET", 60)


def test_s3_presigned_url_carries_sigv4(moto_s3: StorageEmulator) -> None:
    loc = open_filesystem(moto_s3.storage_uri, moto_s3.env)
    url = presign(loc, f"{loc.root}/a.bin", "GET", 120)
    query = _query(url)
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Expires"] == "120"
    assert query["X-Amz-Credential"].startswith("testing/")
