"""Open the fsspec filesystem behind `OPSML_STORAGE_URI`.

    open_filesystem("gs://bucket/prefix", env) -> (GCSFileSystem, "bucket/prefix", "gs")
    open_filesystem("s3://bucket/prefix", env) -> (S3FileSystem, "bucket/prefix", "s3")
    open_filesystem("az://container/p", env)   -> (AzureBlobFileSystem, "container/p", "abfs")
    open_filesystem("./opsml_data", env)       -> (LocalFileSystem, "/abs/opsml_data", "file")

Cloud SDKs are imported here, lazily and only for their own scheme: gcsfs, s3fs and adlfs
together cost tens of MB and most of a second at import, against an idle target of 90 MB RSS
and a 1 s start-up.

Bounded-memory writes. fsspec's buffered files hold one block in memory and send it as one
part (S3 multipart part, GCS resumable chunk, Azure staged block), and the SDKs copy a block
about once more on the way out, so peak growth is roughly 2-3 blocks whatever the object size.
- S3 parts must be >= 5 MiB, at most 10,000 of them: 8 MiB parts reach ~78 GiB. (s3fs's own
  default buffers 50 MiB per part.)
- GCS resumable chunks must be multiples of 256 KiB. 6 MiB: with 8 MiB chunks a 128 MiB
  upload grew the server by 26-32 MB, at the edge of the 32 MB budget; with 6 MiB by 15 MB.
  Fewer, larger chunks are faster (fake-gcs-server: 50-56 MB/s in 8 MiB chunks, 46-48 in
  6 MiB, 34 in 4 MiB; a real bucket pays a round trip per chunk), so not smaller than that.
- Azure allows 50,000 blocks per blob: 4 MiB blocks reach ~195 GiB. With 8 MiB blocks a
  128 MiB upload to Azurite grew the server by 20-34 MB; with 4 MiB by 6-14 MB, at the
  same speed (60 MB/s).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from app.errors import ConfigError
from app.storage.credentials import (
    Credentials,
    Provider,
    azure_credentials,
    gcs_credentials,
    local_credentials,
    s3_credentials,
)
from app.storage.local_root import LocalRoot, open_root

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

# _NO_LISTINGS_CACHE: each gunicorn worker has its own filesystem object, so a listing cached
# by one worker goes stale when another deletes or writes; a deleted card's directory would
# still be listed. Every listing goes to the store instead (one LIST call per files/list).

# Fail fast when S3 is unreachable (readiness and requests answer 503 in seconds, not after
# botocore's default retries and 60 s connect timeout).
_S3_TIMEOUTS: Final = {"connect_timeout": 5, "retries": {"max_attempts": 3, "mode": "standard"}}

MiB: Final = 1024 * 1024
S3_PART_SIZE: Final = 8 * MiB
GCS_CHUNK_SIZE: Final = 6 * MiB
AZURE_BLOCK_SIZE: Final = 4 * MiB

SCHEME_LOCAL: Final = "file"
SCHEME_GCS: Final = "gs"
SCHEME_S3: Final = "s3"
SCHEME_AZURE: Final = "abfs"

# URI scheme -> canonical scheme; `StorageLocation.scheme` is always the canonical one.
_SCHEMES: Final = {
    "file": SCHEME_LOCAL,
    "local": SCHEME_LOCAL,
    "gs": SCHEME_GCS,
    "gcs": SCHEME_GCS,
    "s3": SCHEME_S3,
    "s3a": SCHEME_S3,
    "abfs": SCHEME_AZURE,
    "abfss": SCHEME_AZURE,
    "az": SCHEME_AZURE,
}
_EXTRAS: Final = {SCHEME_GCS: "gcs", SCHEME_S3: "s3", SCHEME_AZURE: "azure"}

UNKNOWN_SCHEME: Final = (
    "OPSML_STORAGE_URI scheme '{scheme}://' is not supported; use gs://, s3://, abfs://, az://, "
    "file:// or a local path"
)
MISSING_EXTRA: Final = (
    "OPSML_STORAGE_URI is {scheme}:// but {module} is not installed; "
    "run: pip install 'opsml-server[{extra}]'"
)
MISSING_BUCKET: Final = "OPSML_STORAGE_URI {scheme}:// needs a bucket or container name"


@dataclass(frozen=True)
class StorageLocation:
    """The storage root: a filesystem and the fs-native root path (no trailing slash).

    `credentials` describes the chosen credential (safe to log via `describe()`) and carries
    what `app.storage.presign` needs; it is excluded from repr and equality. `local_root` is
    the local root's identity at start (`app.storage.local_root`), None for object stores.
    """

    fs: AbstractFileSystem
    root: str
    scheme: str
    credentials: Credentials = field(
        default_factory=lambda: Credentials(provider=Provider.LOCAL, source="none"),
        repr=False,
        compare=False,
    )
    local_root: LocalRoot | None = field(default=None, repr=False, compare=False)

    @property
    def is_local(self) -> bool:
        return self.scheme == SCHEME_LOCAL


def open_filesystem(
    storage_uri: str, env: Mapping[str, str], *, create_local_root: bool = False
) -> StorageLocation:
    """Build the filesystem for `storage_uri`; `ConfigError` with one clear line if it can't.

    A local root must exist unless `create_local_root` (the embedded default only).
    """
    uri = storage_uri.strip()
    if not uri:
        raise ConfigError("OPSML_STORAGE_URI is empty")
    raw_scheme = _scheme_of(uri)
    if raw_scheme is None:
        return _open_local(uri, env, create_local_root)
    scheme = _SCHEMES.get(raw_scheme.lower())
    if scheme is None:
        raise ConfigError(UNKNOWN_SCHEME.format(scheme=raw_scheme))
    if scheme == SCHEME_LOCAL:
        return _open_local(_local_path_of(uri), env, create_local_root)

    parts = urlsplit(uri)
    bucket = parts.netloc
    prefix = parts.path.strip("/")
    if scheme == SCHEME_GCS:
        return _open_gcs(_root(scheme, bucket, prefix), env)
    if scheme == SCHEME_S3:
        return _open_s3(_root(scheme, bucket, prefix), env)
    # abfs://container@account.dfs.core.windows.net/prefix names the account in the URI.
    account: str | None = None
    if "@" in bucket:
        bucket, _, host = bucket.partition("@")
        account = host.split(".", 1)[0] or None
    return _open_azure(_root(scheme, bucket, prefix), env, account)


def _scheme_of(uri: str) -> str | None:
    if "://" not in uri:
        return None
    scheme = uri.split("://", 1)[0]
    return scheme or None


def _local_path_of(uri: str) -> str:
    # file:///abs/path -> /abs/path; file://relative/path -> relative/path
    return uri.split("://", 1)[1] or "."


def _root(scheme: str, bucket: str, prefix: str) -> str:
    if not bucket:
        raise ConfigError(MISSING_BUCKET.format(scheme=scheme))
    return f"{bucket}/{prefix}" if prefix else bucket


def _missing_extra(scheme: str, exc: ImportError) -> ConfigError:
    module = exc.name or "the SDK"
    return ConfigError(MISSING_EXTRA.format(scheme=scheme, module=module, extra=_EXTRAS[scheme]))


# ------------------------------------------------------------------------------------ local


def _open_local(path: str, env: Mapping[str, str], create: bool) -> StorageLocation:
    from fsspec.implementations.local import LocalFileSystem

    root = open_root(path, create=create)
    # No auto_mkdir: the writer creates the folders below the root itself, after checking
    # that the root is still there (an unmounted volume must not be re-created on the disk).
    fs = LocalFileSystem(auto_mkdir=False)
    return StorageLocation(
        fs=fs,
        root=root.path,
        scheme=SCHEME_LOCAL,
        credentials=local_credentials(env),
        local_root=root,
    )


# -------------------------------------------------------------------------------------- GCS


def _open_gcs(root: str, env: Mapping[str, str]) -> StorageLocation:
    creds = gcs_credentials(env)
    # Must precede the first gcsfs import: otherwise each bucket access runs a gRPC bucket-type
    # probe that retries for ~60 s against endpoints it cannot reach (EMULATORS.md).
    os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    try:
        import gcsfs
    except ImportError as exc:
        raise _missing_extra(SCHEME_GCS, exc) from None
    fs = gcsfs.GCSFileSystem(
        # Resumable uploads in 6 MiB chunks (see module docstring).
        block_size=GCS_CHUNK_SIZE,
        # A fresh instance: fsspec's cache would hand back one built with other credentials.
        skip_instance_cache=True,
        use_listings_cache=False,  # see _NO_LISTINGS_CACHE
        **creds.fs_kwargs,
    )
    return StorageLocation(fs=fs, root=root, scheme=SCHEME_GCS, credentials=creds)


# --------------------------------------------------------------------------------------- S3


def _open_s3(root: str, env: Mapping[str, str]) -> StorageLocation:
    creds = s3_credentials(env)
    try:
        import s3fs
    except ImportError as exc:
        raise _missing_extra(SCHEME_S3, exc) from None
    fs = s3fs.S3FileSystem(
        # Multipart parts of 8 MiB instead of s3fs's 50 MiB default (see module docstring).
        default_block_size=S3_PART_SIZE,
        # botocore would pre-sign with legacy SigV2, which newer regions refuse.
        config_kwargs={"signature_version": "s3v4", **_S3_TIMEOUTS},
        skip_instance_cache=True,
        use_listings_cache=False,  # see _NO_LISTINGS_CACHE
        **creds.fs_kwargs,
    )
    return StorageLocation(fs=fs, root=root, scheme=SCHEME_S3, credentials=creds)


# ------------------------------------------------------------------------------------ Azure


def _open_azure(root: str, env: Mapping[str, str], account: str | None) -> StorageLocation:
    creds = azure_credentials(env, account_name=account)
    try:
        import adlfs
    except ImportError as exc:
        raise _missing_extra(SCHEME_AZURE, exc) from None
    fs = adlfs.AzureBlobFileSystem(
        # Staged blocks of 4 MiB (see module docstring); adlfs commits the list on close.
        blocksize=AZURE_BLOCK_SIZE,
        skip_instance_cache=True,
        use_listings_cache=False,  # see _NO_LISTINGS_CACHE
        **creds.fs_kwargs,
    )
    return StorageLocation(fs=fs, root=root, scheme=SCHEME_AZURE, credentials=creds)
