"""Choose the cloud credential for the storage backend, following the seed's precedence.

Everything here is pure: it reads the environment mapping it is given (never `os.environ`),
may read a key file named by a variable, imports no cloud SDK and makes no network call. The
result is a `Credentials` description: a human label of which source won (safe to log) plus the
keyword arguments for the fsspec filesystem and, separately, what pre-signing needs.

Secrets never leave this object by accident: `repr`/`str` list only the provider, the source
and the *names* of the kwargs, and error messages name variables, never their values.

Precedence (first match wins):

    GCS    STORAGE_EMULATOR_HOST (endpoint + anonymous data calls; a key below still signs)
           GOOGLE_ACCOUNT_JSON_BASE64 > GOOGLE_APPLICATION_CREDENTIALS_SA
           > GOOGLE_APPLICATION_CREDENTIALS > application default credentials
    S3     AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN) > AWS_PROFILE
           > botocore's default chain (incl. IRSA web identity); AWS_ENDPOINT_URL, AWS_REGION
    Azure  AZURE_STORAGE_CONNECTION_STRING > AZURE_STORAGE_ACCOUNT_KEY
           > AZURE_STORAGE_TENANT_ID + _CLIENT_ID + _CLIENT_SECRET (ClientSecretCredential)
           > DefaultAzureCredential (workload identity included);
           AZURE_STORAGE_ACCOUNT_NAME is required unless the connection string names it.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from app.errors import ConfigError


class Provider(StrEnum):
    LOCAL = "local"
    GCS = "gcs"
    S3 = "s3"
    AZURE = "azure"


class AzureAuth(StrEnum):
    """How an Azure credential object is to be built (by the backend, lazily)."""

    CONNECTION_STRING = "connection_string"
    ACCOUNT_KEY = "account_key"
    CLIENT_SECRET = "client_secret"  # azure.identity ClientSecretCredential
    DEFAULT = "default"  # azure.identity DefaultAzureCredential


@dataclass(frozen=True, repr=False)
class Credentials:
    """Which credential source won, and what the filesystem and the signer need.

    `fs_kwargs` go straight to the fsspec filesystem constructor. The other fields feed
    `app.storage.presign`. Only `provider`, `source` and the kwarg names are ever shown.
    """

    provider: Provider
    source: str
    fs_kwargs: Mapping[str, Any] = field(default_factory=dict)
    # GCS: service-account info (a dict) or a key-file path that can sign V4 URLs locally.
    gcs_signer_info: Mapping[str, Any] | None = None
    gcs_signer_file: str | None = None
    # GCS/S3/Azure: a non-default API endpoint (emulators, S3-compatible stores).
    endpoint_url: str | None = None
    # Azure.
    azure_auth: AzureAuth | None = None
    azure_account_name: str | None = None
    azure_account_key: str | None = None
    azure_account_url: str | None = None
    # Local: HMAC key for the server's own signed URLs.
    signing_key: bytes | None = None

    def describe(self) -> str:
        """One loggable line: provider and source, never a value."""
        return f"{self.provider.value} storage credentials from {self.source}"

    def __repr__(self) -> str:
        keys = ", ".join(sorted(self.fs_kwargs))
        return (
            f"Credentials(provider={self.provider.value!r}, source={self.source!r}, "
            f"fs_kwargs=[{keys}])"
        )

    __str__ = __repr__


# Messages the tests reuse.
BAD_GOOGLE_BASE64: Final = (
    "GOOGLE_ACCOUNT_JSON_BASE64 is not base64-encoded service-account JSON; "
    "encode the key file with `base64 -w0 key.json`"
)
AWS_PAIR_INCOMPLETE: Final = (
    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together (one of them is missing)"
)
AZURE_ACCOUNT_MISSING: Final = (
    "AZURE_STORAGE_ACCOUNT_NAME is required for abfs:// / az:// storage "
    "(or set AZURE_STORAGE_CONNECTION_STRING)"
)
AZURE_SP_INCOMPLETE: Final = (
    "Azure service principal needs AZURE_STORAGE_TENANT_ID, AZURE_STORAGE_CLIENT_ID and "
    "AZURE_STORAGE_CLIENT_SECRET together; missing: {missing}"
)
BAD_AZURE_CONNECTION_STRING: Final = (
    "AZURE_STORAGE_CONNECTION_STRING has no AccountName; expected "
    "'DefaultEndpointsProtocol=...;AccountName=...;AccountKey=...;BlobEndpoint=...'"
)
SIGNING_KEY_EMPTY: Final = "OPSML_SIGNING_KEY is set but empty; set a long random value or unset it"

_GCS_KEY_FILE_MISSING: Final = "{var} names a key file that does not exist or is not readable"


def _get(env: Mapping[str, str], name: str) -> str | None:
    """A variable's value, with blank treated as unset (Helm often renders empty strings)."""
    value = env.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


# --------------------------------------------------------------------------------------- GCS


def _decode_google_base64(raw: str) -> dict[str, Any]:
    try:
        decoded = base64.b64decode(raw, validate=False)
        info = json.loads(decoded)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        # `from None`: the original exception can carry the decoded document.
        raise ConfigError(BAD_GOOGLE_BASE64) from None
    if not isinstance(info, dict) or "type" not in info:
        raise ConfigError(BAD_GOOGLE_BASE64)
    return info


def _readable_file(var: str, path: str) -> str:
    expanded = os.path.expanduser(path)
    if not os.path.isfile(expanded) or not os.access(expanded, os.R_OK):
        raise ConfigError(_GCS_KEY_FILE_MISSING.format(var=var))
    return expanded


def _file_is_service_account(path: str) -> bool:
    try:
        with open(path, encoding="utf-8") as handle:
            info = json.load(handle)
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and info.get("type") == "service_account"


def gcs_credentials(env: Mapping[str, str]) -> Credentials:
    """gcsfs kwargs (`token`, `project`, `endpoint_url`) and the V4 signer, per precedence."""
    kwargs: dict[str, Any] = {}
    signer_info: dict[str, Any] | None = None
    signer_file: str | None = None

    if raw := _get(env, "GOOGLE_ACCOUNT_JSON_BASE64"):
        signer_info = _decode_google_base64(raw)
        # gcsfs accepts the parsed key as `token` (service account or authorized user).
        kwargs["token"] = signer_info
        source = "GOOGLE_ACCOUNT_JSON_BASE64"
        if project := signer_info.get("project_id"):
            kwargs["project"] = project
    elif path := _get(env, "GOOGLE_APPLICATION_CREDENTIALS_SA"):
        kwargs["token"] = signer_file = _readable_file("GOOGLE_APPLICATION_CREDENTIALS_SA", path)
        source = "GOOGLE_APPLICATION_CREDENTIALS_SA"
    elif path := _get(env, "GOOGLE_APPLICATION_CREDENTIALS"):
        kwargs["token"] = _readable_file("GOOGLE_APPLICATION_CREDENTIALS", path)
        # An ADC file may be a user login (cannot sign) or a service-account key (can).
        signer_file = kwargs["token"] if _file_is_service_account(kwargs["token"]) else None
        source = "GOOGLE_APPLICATION_CREDENTIALS"
    else:
        kwargs["token"] = "google_default"
        source = "application default credentials"

    endpoint: str | None = None
    if emulator := _get(env, "STORAGE_EMULATOR_HOST"):
        endpoint = emulator if "://" in emulator else f"http://{emulator}"
        # Emulators ignore auth; an anonymous token avoids any call to Google's token endpoint.
        kwargs["token"] = "anon"
        kwargs["endpoint_url"] = endpoint
        source = f"STORAGE_EMULATOR_HOST (anonymous; signing key from {source})"
    if project := _get(env, "GOOGLE_CLOUD_PROJECT"):
        kwargs.setdefault("project", project)

    return Credentials(
        provider=Provider.GCS,
        source=source,
        fs_kwargs=kwargs,
        gcs_signer_info=signer_info,
        gcs_signer_file=signer_file,
        endpoint_url=endpoint,
    )


# ---------------------------------------------------------------------------------------- S3


def s3_credentials(env: Mapping[str, str]) -> Credentials:
    """s3fs kwargs (`key`/`secret`/`token` or `profile`, `endpoint_url`, region)."""
    kwargs: dict[str, Any] = {}
    key_id = _get(env, "AWS_ACCESS_KEY_ID")
    secret = _get(env, "AWS_SECRET_ACCESS_KEY")
    if key_id or secret:
        if not (key_id and secret):
            raise ConfigError(AWS_PAIR_INCOMPLETE)
        kwargs["key"] = key_id
        kwargs["secret"] = secret
        source = "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        if token := _get(env, "AWS_SESSION_TOKEN"):
            kwargs["token"] = token
            source += " with AWS_SESSION_TOKEN"
    elif profile := _get(env, "AWS_PROFILE"):
        kwargs["profile"] = profile
        source = "AWS_PROFILE"
    else:
        # botocore's chain: env, shared files, web identity (IRSA), container and instance roles.
        source = "AWS default credential chain"

    endpoint = _get(env, "AWS_ENDPOINT_URL")
    if endpoint:
        kwargs["endpoint_url"] = endpoint
    # Only an explicit AWS_REGION is passed on: botocore reads AWS_DEFAULT_REGION itself, and a
    # forced region breaks bucket creation on moto (see EMULATORS.md).
    if region := _get(env, "AWS_REGION"):
        kwargs["client_kwargs"] = {"region_name": region}

    return Credentials(provider=Provider.S3, source=source, fs_kwargs=kwargs, endpoint_url=endpoint)


# ------------------------------------------------------------------------------------- Azure


def parse_connection_string(raw: str) -> dict[str, str]:
    """`Key=Value;...` into a dict (values may contain '=', e.g. base64 keys)."""
    parts: dict[str, str] = {}
    for item in raw.split(";"):
        if "=" in item:
            name, _, value = item.partition("=")
            parts[name.strip()] = value.strip()
    return parts


def _blob_account_url(parts: Mapping[str, str], account: str) -> str:
    if endpoint := parts.get("BlobEndpoint"):
        return endpoint.rstrip("/")
    protocol = parts.get("DefaultEndpointsProtocol", "https")
    suffix = parts.get("EndpointSuffix", "core.windows.net")
    return f"{protocol}://{account}.blob.{suffix}"


def azure_credentials(env: Mapping[str, str], *, account_name: str | None = None) -> Credentials:
    """adlfs kwargs; `account_name` may come from an `abfs://container@account.dfs...` URI."""
    kwargs: dict[str, Any] = {}
    account = _get(env, "AZURE_STORAGE_ACCOUNT_NAME") or account_name

    if conn := _get(env, "AZURE_STORAGE_CONNECTION_STRING"):
        parts = parse_connection_string(conn)
        conn_account = parts.get("AccountName")
        if not conn_account:
            raise ConfigError(BAD_AZURE_CONNECTION_STRING)
        kwargs["connection_string"] = conn
        return Credentials(
            provider=Provider.AZURE,
            source="AZURE_STORAGE_CONNECTION_STRING",
            fs_kwargs=kwargs,
            azure_auth=AzureAuth.CONNECTION_STRING,
            azure_account_name=conn_account,
            azure_account_key=parts.get("AccountKey"),
            azure_account_url=_blob_account_url(parts, conn_account),
            endpoint_url=parts.get("BlobEndpoint"),
        )

    if not account:
        raise ConfigError(AZURE_ACCOUNT_MISSING)
    kwargs["account_name"] = account
    account_url = f"https://{account}.blob.core.windows.net"

    if key := _get(env, "AZURE_STORAGE_ACCOUNT_KEY"):
        kwargs["account_key"] = key
        return Credentials(
            provider=Provider.AZURE,
            source="AZURE_STORAGE_ACCOUNT_KEY",
            fs_kwargs=kwargs,
            azure_auth=AzureAuth.ACCOUNT_KEY,
            azure_account_name=account,
            azure_account_key=key,
            azure_account_url=account_url,
        )

    sp_vars = ("AZURE_STORAGE_TENANT_ID", "AZURE_STORAGE_CLIENT_ID", "AZURE_STORAGE_CLIENT_SECRET")
    sp_values = {var: _get(env, var) for var in sp_vars}
    present = [var for var, value in sp_values.items() if value]
    if present:
        missing = [var for var in sp_vars if var not in present]
        if missing:
            raise ConfigError(AZURE_SP_INCOMPLETE.format(missing=", ".join(missing)))
        # adlfs builds an async ClientSecretCredential from these three kwargs itself.
        kwargs["tenant_id"] = sp_values["AZURE_STORAGE_TENANT_ID"]
        kwargs["client_id"] = sp_values["AZURE_STORAGE_CLIENT_ID"]
        kwargs["client_secret"] = sp_values["AZURE_STORAGE_CLIENT_SECRET"]
        return Credentials(
            provider=Provider.AZURE,
            source="AZURE_STORAGE_TENANT_ID/CLIENT_ID/CLIENT_SECRET (ClientSecretCredential)",
            fs_kwargs=kwargs,
            azure_auth=AzureAuth.CLIENT_SECRET,
            azure_account_name=account,
            azure_account_url=account_url,
        )

    # anon=False makes adlfs use (async) DefaultAzureCredential: env, workload identity, MSI, CLI.
    kwargs["anon"] = False
    return Credentials(
        provider=Provider.AZURE,
        source="DefaultAzureCredential",
        fs_kwargs=kwargs,
        azure_auth=AzureAuth.DEFAULT,
        azure_account_name=account,
        azure_account_url=account_url,
    )


# ------------------------------------------------------------------------------------- Local

# One random key per process when OPSML_SIGNING_KEY is unset. Under gunicorn, app.gunicorn_conf
# draws one key in the master for all its workers; several replicas must set the variable.
_PROCESS_SIGNING_KEY: Final = secrets.token_bytes(32)


def local_credentials(env: Mapping[str, str]) -> Credentials:
    """The HMAC key for local-storage signed URLs (`OPSML_SIGNING_KEY`, else random)."""
    if "OPSML_SIGNING_KEY" in env:
        raw = _get(env, "OPSML_SIGNING_KEY")
        if not raw:
            raise ConfigError(SIGNING_KEY_EMPTY)
        return Credentials(
            provider=Provider.LOCAL, source="OPSML_SIGNING_KEY", signing_key=raw.encode("utf-8")
        )
    return Credentials(
        provider=Provider.LOCAL,
        source="a random per-process signing key (set OPSML_SIGNING_KEY for several workers)",
        signing_key=_PROCESS_SIGNING_KEY,
    )
