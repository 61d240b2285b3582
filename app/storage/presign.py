"""Pre-signed URLs: a browser or client fetches (or uploads) one object without our credentials.

    presign(location, fs_path, "GET", 600)  -> https URL valid for 10 minutes

Per backend:
- S3: SigV4 query signature from the s3fs/aiobotocore client (`get_object` / `put_object`).
- GCS: V4 signed URL. With a service-account key it is signed locally; with a keyless identity
  (Workload Identity, ADC) the IAM `signBlob` API signs it for the service account's email.
- Azure: a blob SAS. With an account key (connection string or AZURE_STORAGE_ACCOUNT_KEY) it is
  signed locally; with an AAD identity it is a user-delegation SAS (one key request, cached).
- Local: a URL on this server, `/opsml/files/signed?path=&expires=&method=&signature=`, where
  `signature` is an HMAC-SHA256 over (method, path, expiry) with `OPSML_SIGNING_KEY`. `path` is
  relative to the storage root, so the URL says nothing about the server's disk layout.
  Without OPSML_SIGNING_KEY every process draws its own random key: with several gunicorn
  workers a URL signed by one worker is refused by the others, so set the variable there.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import posixpath
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import quote, urlencode

from app.errors import AuthError, ConfigError, InvalidPathError, InvalidRequestError
from app.storage.backends import (
    SCHEME_AZURE,
    SCHEME_GCS,
    SCHEME_LOCAL,
    SCHEME_S3,
    StorageLocation,
)
from app.storage.credentials import AzureAuth, Credentials

if TYPE_CHECKING:
    from azure.storage.blob import UserDelegationKey

Method = Literal["GET", "PUT"]

MAX_EXPIRES_S: Final = 7 * 24 * 3600  # the SigV4 / GCS V4 ceiling; Azure takes the same cap
# A PUT URL lets its bearer write, so it lives one hour at most: long enough to start a large
# upload (the stores check expiry when a request starts, not when it ends), short enough to
# limit replays. Local PUT URLs are also single-use (see app.routers.files).
MAX_PUT_EXPIRES_S: Final = 3600
SIGNED_ROUTE: Final = "/opsml/files/signed"
GCS_DEFAULT_ENDPOINT: Final = "https://storage.googleapis.com"

# Messages the tests reuse.
BAD_METHOD: Final = "pre-signed URLs support GET and PUT only"
BAD_EXPIRY: Final = f"expires_s must be between 1 and {MAX_EXPIRES_S} seconds"
BAD_PUT_EXPIRY: Final = (
    f"PUT URLs last at most {MAX_PUT_EXPIRES_S} seconds: ask for expires <= {MAX_PUT_EXPIRES_S}"
)
OUTSIDE_ROOT: Final = "path is not under the storage root"
SIGNATURE_INVALID: Final = "signed URL is invalid"
SIGNATURE_EXPIRED: Final = "signed URL has expired"
AZURE_CANNOT_SIGN: Final = (
    "Azure storage cannot pre-sign: the connection string has no AccountKey and no AAD "
    "identity is configured"
)


def presign(
    location: StorageLocation,
    fs_path: str,
    method: Method,
    expires_s: int,
    *,
    base_url: str = "",
    now: datetime | None = None,
) -> str:
    """A URL that allows `method` on the object at `fs_path` for `expires_s` seconds.

    `fs_path` is fs-native and must lie under `location.root`. `base_url` (where clients reach
    this server, `app.public_url`) prefixes local-storage URLs; cloud URLs are absolute anyway.
    `now` is for tests. PUT URLs last at most `MAX_PUT_EXPIRES_S`.
    """
    verb = method.upper()
    if verb not in ("GET", "PUT"):
        raise InvalidRequestError(BAD_METHOD)
    if not 1 <= expires_s <= MAX_EXPIRES_S:
        raise InvalidRequestError(BAD_EXPIRY)
    if verb == "PUT" and expires_s > MAX_PUT_EXPIRES_S:
        raise InvalidRequestError(BAD_PUT_EXPIRY)
    path = _under_root(location.root, fs_path)
    start = now or datetime.now(UTC)

    if location.scheme == SCHEME_LOCAL:
        return _presign_local(location, path, verb, start, expires_s, base_url)
    if location.scheme == SCHEME_S3:
        return _presign_s3(location, path, verb, expires_s)
    if location.scheme == SCHEME_GCS:
        # A timedelta lets the library measure from its own clock: X-Goog-Expires stays exact.
        expiration = start + timedelta(seconds=expires_s) if now else timedelta(seconds=expires_s)
        return _presign_gcs(location.credentials, path, verb, expiration)
    if location.scheme == SCHEME_AZURE:
        return _presign_azure(location.credentials, path, verb, start, expires_s)
    raise ConfigError(f"cannot pre-sign for storage scheme '{location.scheme}'")


def _under_root(root: str, fs_path: str) -> str:
    path = posixpath.normpath(fs_path)
    if not path.startswith(root.rstrip("/") + "/"):
        raise InvalidPathError(OUTSIDE_ROOT)
    return path


def _split_bucket(path: str) -> tuple[str, str]:
    bucket, _, key = path.partition("/")
    return bucket, key


# ------------------------------------------------------------------------------------ local


def _local_message(path: str, method: str, expires_at: int) -> bytes:
    # Newline-separated fields: a path cannot smuggle a different method or expiry into the MAC.
    return f"{method.upper()}\n{expires_at}\n{path}".encode()


def sign_local(path: str, method: str, expires_at: int, key: bytes) -> str:
    """HMAC-SHA256 token (urlsafe base64, no padding) for `method` on `path` until `expires_at`.

    `path` is relative to the storage root; `expires_at` is a Unix timestamp in seconds.
    """
    digest = hmac.new(key, _local_message(path, method, expires_at), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify_local(
    path: str,
    method: str,
    expires_at: int,
    signature: str,
    key: bytes,
    *,
    now: float | None = None,
) -> None:
    """Accept a local signed URL or raise `AuthError(forbidden=True)`.

    The signature is checked first, in constant time, so an unsigned caller learns nothing
    about expiry; then the expiry itself.
    """
    expected = sign_local(path, method, expires_at, key)
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace")):
        raise AuthError(SIGNATURE_INVALID, forbidden=True)
    if (time.time() if now is None else now) >= expires_at:
        raise AuthError(SIGNATURE_EXPIRED, forbidden=True)


def verify_signed_request(
    location: StorageLocation,
    path: str,
    method: str,
    expires: str | int,
    signature: str,
    *,
    now: float | None = None,
) -> str:
    """For the `/opsml/files/signed` route: check the query and return the fs-native path.

    `path` is the root-relative path from the URL. Raises `AuthError` (403) when the signature
    or expiry is wrong and `InvalidPathError` when the path escapes the root.
    """
    key = location.credentials.signing_key
    if key is None:
        raise ConfigError("local storage has no signing key")
    try:
        expires_at = int(expires)
    except (TypeError, ValueError):
        raise AuthError(SIGNATURE_INVALID, forbidden=True) from None
    verify_local(path, method, expires_at, signature, key, now=now)
    return _under_root(location.root, posixpath.join(location.root, path))


def _presign_local(
    location: StorageLocation,
    path: str,
    method: str,
    start: datetime,
    expires_s: int,
    base_url: str,
) -> str:
    key = location.credentials.signing_key
    if key is None:
        raise ConfigError("local storage has no signing key")
    relative = posixpath.relpath(path, location.root)
    expires_at = int(start.timestamp()) + expires_s
    query = urlencode(
        {
            "path": relative,
            "expires": str(expires_at),
            "method": method,
            "signature": sign_local(relative, method, expires_at, key),
        }
    )
    return f"{base_url.rstrip('/')}{SIGNED_ROUTE}?{query}"


# --------------------------------------------------------------------------------------- S3


def _presign_s3(location: StorageLocation, path: str, method: str, expires_s: int) -> str:
    # s3fs's `url` runs aiobotocore's generate_presigned_url on the filesystem's own client,
    # so the endpoint, region and credentials are exactly the ones data calls use.
    client_method = "get_object" if method == "GET" else "put_object"
    url: str = location.fs.url(path, expires=expires_s, client_method=client_method)
    return url


# -------------------------------------------------------------------------------------- GCS


def _presign_gcs(
    creds: Credentials, path: str, method: str, expiration: datetime | timedelta
) -> str:
    from google.cloud import storage

    bucket, key = _split_bucket(path)
    # An anonymous client builds no network connection; it only supplies the blob model.
    client = storage.Client.create_anonymous_client()
    blob = client.bucket(bucket).blob(key)
    endpoint = creds.endpoint_url or GCS_DEFAULT_ENDPOINT

    signer = _gcs_key_signer(creds)
    if signer is not None:
        url: str = blob.generate_signed_url(
            version="v4",
            expiration=expiration,
            method=method,
            credentials=signer,
            api_access_endpoint=endpoint,
        )
        return url

    # Keyless (Workload Identity / ADC): the IAM signBlob API signs for the account's email.
    email, token = _gcs_keyless_identity()
    url = blob.generate_signed_url(
        version="v4",
        expiration=expiration,
        method=method,
        service_account_email=email,
        access_token=token,
        api_access_endpoint=endpoint,
    )
    return url


def _gcs_key_signer(creds: Credentials) -> Any:
    from google.oauth2 import service_account

    # google-auth is untyped: go through Any rather than scatter ignores.
    key_credentials: Any = service_account.Credentials
    if creds.gcs_signer_info is not None and creds.gcs_signer_info.get("type") == (
        "service_account"
    ):
        return key_credentials.from_service_account_info(dict(creds.gcs_signer_info))
    if creds.gcs_signer_file is not None:
        return key_credentials.from_service_account_file(creds.gcs_signer_file)
    return None


# ADC discovery probes the metadata server: do it once per process, then only refresh tokens.
_gcs_identity: Any = None
_gcs_identity_lock = threading.Lock()


def _gcs_keyless_identity() -> tuple[str, str]:
    import google.auth
    from google.auth.transport.requests import Request

    global _gcs_identity
    with _gcs_identity_lock:
        if _gcs_identity is None:
            _gcs_identity, _ = google.auth.default(
                scopes=["https://www.googleapis.com/auth/cloud-platform"]
            )
        identity = _gcs_identity
        return _gcs_identity_token(identity, Request)


def _gcs_identity_token(identity: Any, make_request: Any) -> tuple[str, str]:
    if not identity.valid:
        identity.refresh(make_request())
    email = getattr(identity, "service_account_email", None)
    if not email or email == "default":
        # On GKE the metadata server names the account only after a refresh.
        identity.refresh(make_request())
        email = getattr(identity, "service_account_email", None)
    if not email:
        raise ConfigError(
            "GCS pre-signing needs a service account: the default credentials are a user login; "
            "set GOOGLE_ACCOUNT_JSON_BASE64 or run under a service account (Workload Identity)"
        )
    return str(email), str(identity.token)


# ------------------------------------------------------------------------------------ Azure


def _presign_azure(
    creds: Credentials, path: str, method: str, start: datetime, expires_s: int
) -> str:
    from azure.storage.blob import BlobSasPermissions, generate_blob_sas

    container, blob = _split_bucket(path)
    account = creds.azure_account_name
    account_url = creds.azure_account_url
    if account is None or account_url is None:
        raise ConfigError("Azure storage location has no account name")
    permission = (
        BlobSasPermissions(read=True)
        if method == "GET"
        else BlobSasPermissions(create=True, write=True)
    )
    expiry = start + timedelta(seconds=expires_s)
    # Start a little in the past: the storage service's clock may run behind ours.
    sas_start = start - timedelta(minutes=5)
    if creds.azure_account_key:
        sas = generate_blob_sas(
            account_name=account,
            container_name=container,
            blob_name=blob,
            account_key=creds.azure_account_key,
            permission=permission,
            expiry=expiry,
            start=sas_start,
        )
    elif creds.azure_auth in (AzureAuth.CLIENT_SECRET, AzureAuth.DEFAULT):
        delegation_key = _user_delegation_key(creds, start, expiry)
        sas = generate_blob_sas(
            account_name=account,
            container_name=container,
            blob_name=blob,
            user_delegation_key=delegation_key,
            permission=permission,
            expiry=expiry,
            start=sas_start,
        )
    else:
        raise ConfigError(AZURE_CANNOT_SIGN)
    return f"{account_url}/{quote(container)}/{quote(blob)}?{sas}"


@dataclass
class _CachedDelegationKey:
    key: UserDelegationKey
    expires: datetime


# A user-delegation key is valid up to 7 days; asking for one per URL would cost a round trip
# each time, so one key (valid for a day) is reused per account while it outlives the URL.
_DELEGATION_KEY_TTL: Final = timedelta(days=1)
_delegation_keys: dict[str, _CachedDelegationKey] = {}
_delegation_lock = threading.Lock()


def _azure_token_credential(creds: Credentials) -> Any:
    if creds.azure_auth is AzureAuth.CLIENT_SECRET:
        from azure.identity import ClientSecretCredential

        return ClientSecretCredential(
            tenant_id=creds.fs_kwargs["tenant_id"],
            client_id=creds.fs_kwargs["client_id"],
            client_secret=creds.fs_kwargs["client_secret"],
        )
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def _user_delegation_key(creds: Credentials, start: datetime, expiry: datetime) -> Any:
    from azure.storage.blob import BlobServiceClient

    cache_key = f"{creds.azure_account_url}|{creds.azure_auth}|{creds.fs_kwargs.get('client_id')}"
    with _delegation_lock:
        cached = _delegation_keys.get(cache_key)
        if cached is not None and cached.expires >= expiry:
            return cached.key
        key_expiry = max(expiry, start + _DELEGATION_KEY_TTL)
        service = BlobServiceClient(
            account_url=str(creds.azure_account_url), credential=_azure_token_credential(creds)
        )
        key = service.get_user_delegation_key(
            key_start_time=start - timedelta(minutes=5), key_expiry_time=key_expiry
        )
        _delegation_keys[cache_key] = _CachedDelegationKey(key=key, expires=key_expiry)
        return key
