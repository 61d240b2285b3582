"""`open_filesystem`: URI parsing, clear start-up errors, lazy SDK imports, and real round trips
against each backend's emulator (through the `storage_backend` fixture)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from app.errors import ConfigError
from app.storage.backends import (
    AZURE_BLOCK_SIZE,
    GCS_CHUNK_SIZE,
    MISSING_EXTRA,
    S3_PART_SIZE,
    SCHEME_AZURE,
    SCHEME_GCS,
    SCHEME_LOCAL,
    SCHEME_S3,
    StorageLocation,
    open_filesystem,
)
from app.storage.credentials import AZURE_ACCOUNT_MISSING
from app.storage.local_root import LOCAL_MISSING
from tests.support.emulators import REPO_ROOT, StorageEmulator

MiB = 1024 * 1024
# The budget for a 1 GiB artifact; a 64 MiB stream in 1 MiB chunks must stay inside it too.
RSS_BUDGET = 32 * MiB


@pytest.fixture
def location(storage_backend: StorageEmulator) -> Iterator[StorageLocation]:
    loc = open_filesystem(storage_backend.storage_uri, storage_backend.env)
    yield loc


# ------------------------------------------------------------------------------- URI parsing


@pytest.mark.parametrize("uri", ["ftp://host/dir", "hdfs://nn/path", "gdrive://x"])
def test_unknown_scheme_is_one_clear_line(uri: str) -> None:
    with pytest.raises(ConfigError) as caught:
        open_filesystem(uri, {})
    message = caught.value.message
    assert uri.split("://")[0] + "://" in message
    assert "gs://, s3://, abfs://" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("uri", "module", "extra"),
    [
        ("gs://bucket/root", "gcsfs", "gcs"),
        ("s3://bucket/root", "s3fs", "s3"),
        ("abfs://container/root", "adlfs", "azure"),
    ],
)
def test_missing_sdk_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, uri: str, module: str, extra: str
) -> None:
    # None in sys.modules makes `import module` fail as if the package were absent.
    monkeypatch.setitem(sys.modules, module, None)
    env = {"AZURE_STORAGE_ACCOUNT_NAME": "acct"}
    with pytest.raises(ConfigError) as caught:
        open_filesystem(uri, env)
    assert f"pip install 'opsml-server[{extra}]'" in caught.value.message
    assert module in caught.value.message
    assert MISSING_EXTRA.split("{")[0] in caught.value.message


@pytest.mark.parametrize("uri", ["s3://", "gs:///prefix", "abfs://"])
def test_cloud_uri_needs_a_bucket(uri: str) -> None:
    with pytest.raises(ConfigError, match="bucket or container"):
        open_filesystem(uri, {"AZURE_STORAGE_ACCOUNT_NAME": "acct"})


def test_azure_without_account_name_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_CONNECTION_STRING"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigError) as caught:
        open_filesystem("az://container/prefix", {})
    assert caught.value.message == AZURE_ACCOUNT_MISSING


def test_empty_uri_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="empty"):
        open_filesystem("  ", {})


def test_bare_relative_path_is_created_when_asked_and_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    loc = open_filesystem("./data/artifacts/", {}, create_local_root=True)
    assert loc.scheme == SCHEME_LOCAL
    assert loc.is_local
    assert loc.root == (tmp_path / "data" / "artifacts").as_posix()
    assert Path(loc.root).is_dir()


def test_a_missing_local_root_is_not_created_unless_asked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        open_filesystem(str(tmp_path / "volume" / "artifacts"), {})
    assert raised.value.message == LOCAL_MISSING.format(path=tmp_path / "volume" / "artifacts")
    assert not (tmp_path / "volume").exists()


def test_file_uri(tmp_path: Path) -> None:
    (tmp_path / "nested" / "root").mkdir(parents=True)
    loc = open_filesystem(f"file://{tmp_path}/nested/root", {})
    assert loc.root == f"{tmp_path}/nested/root"
    assert Path(loc.root).is_dir()


def test_local_root_that_is_a_file_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="not a creatable directory"):
        open_filesystem(str(tmp_path / "file"), {})


@pytest.mark.parametrize(
    ("uri", "scheme", "root"),
    [
        ("gs://bucket/a/b/", SCHEME_GCS, "bucket/a/b"),
        ("gcs://bucket", SCHEME_GCS, "bucket"),
        ("s3://bucket/prefix", SCHEME_S3, "bucket/prefix"),
        ("abfs://container/prefix", SCHEME_AZURE, "container/prefix"),
        ("az://container", SCHEME_AZURE, "container"),
        ("abfs://container@acct.dfs.core.windows.net/p", SCHEME_AZURE, "container/p"),
    ],
)
def test_cloud_roots(uri: str, scheme: str, root: str) -> None:
    env = {
        "AZURE_STORAGE_ACCOUNT_NAME": "acct",
        "AZURE_STORAGE_ACCOUNT_KEY": "a2V5",
        "STORAGE_EMULATOR_HOST": "http://127.0.0.1:9",
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
    }
    loc = open_filesystem(uri, env)
    assert (loc.scheme, loc.root) == (scheme, root)
    assert not loc.is_local


def test_block_sizes_bound_write_buffers() -> None:
    env = {
        "STORAGE_EMULATOR_HOST": "http://127.0.0.1:9",
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
        "AZURE_STORAGE_ACCOUNT_NAME": "acct",
        "AZURE_STORAGE_ACCOUNT_KEY": "a2V5",
    }
    assert open_filesystem("gs://b/p", env).fs.default_block_size == GCS_CHUNK_SIZE
    assert open_filesystem("s3://b/p", env).fs.default_block_size == S3_PART_SIZE
    assert open_filesystem("abfs://c/p", env).fs.blocksize == AZURE_BLOCK_SIZE
    assert GCS_CHUNK_SIZE % (256 * 1024) == 0  # GCS resumable chunks
    assert 5 * MiB <= S3_PART_SIZE  # S3 multipart parts
    assert 50_000 * AZURE_BLOCK_SIZE > 100 * 1024**3  # Azure: at most 50,000 blocks a blob


def test_each_open_builds_a_fresh_filesystem() -> None:
    env = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
    first = open_filesystem("s3://b/p", env)
    other = open_filesystem("s3://b/p", {"AWS_ACCESS_KEY_ID": "k2", "AWS_SECRET_ACCESS_KEY": "s"})
    assert first.fs is not other.fs


def test_gcs_sets_the_hns_probe_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", raising=False)
    open_filesystem("gs://b/p", {"STORAGE_EMULATOR_HOST": "http://127.0.0.1:9"})
    assert os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] == "false"


def test_azure_service_principal_and_default_credential_objects() -> None:
    from azure.identity.aio import ClientSecretCredential, DefaultAzureCredential

    sp = open_filesystem(
        "abfs://c/p",
        {
            "AZURE_STORAGE_ACCOUNT_NAME": "acct",
            "AZURE_STORAGE_TENANT_ID": "00000000-0000-0000-0000-000000000000",
            "AZURE_STORAGE_CLIENT_ID": "client",
            "AZURE_STORAGE_CLIENT_SECRET": "secret",
        },
    )
    assert isinstance(sp.fs.credential, ClientSecretCredential)
    default = open_filesystem("abfs://c/p", {"AZURE_STORAGE_ACCOUNT_NAME": "acct"})
    assert isinstance(default.fs.credential, DefaultAzureCredential)


def test_gcs_key_becomes_service_account_credentials() -> None:
    import base64
    import json

    from google.oauth2 import service_account

    from tests.support.emulators import generated_service_account

    raw = base64.b64encode(json.dumps(generated_service_account()).encode()).decode()
    loc = open_filesystem("gs://b/p", {"GOOGLE_ACCOUNT_JSON_BASE64": raw})
    assert isinstance(loc.fs.credentials.credentials, service_account.Credentials)


def test_no_cloud_sdk_is_imported_for_local_storage(tmp_path: Path) -> None:
    # A fresh interpreter: this test process has long imported every SDK.
    code = (
        "import sys\n"
        "from app.storage.backends import open_filesystem\n"
        "import app.storage.presign, app.storage.credentials\n"
        f"open_filesystem({str(tmp_path)!r}, {{}})\n"
        "heavy = ('gcsfs', 's3fs', 'adlfs', 'botocore', 'aiobotocore', 'azure', 'google.cloud',"
        " 'google.auth')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m in heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


# ----------------------------------------------------------------------- against each backend


def test_round_trip(location: StorageLocation) -> None:
    fs, root = location.fs, location.root
    path = f"{root}/cards/model/v1/weights.bin"
    payload = os.urandom(300_000)
    if location.is_local:  # no auto_mkdir locally: the artifact writer makes the folders
        fs.makedirs(f"{root}/cards/model/v1")
    with fs.open(path, "wb") as handle:
        handle.write(payload)
    fs.pipe(f"{root}/cards/model/v1/meta.json", b"{}")

    assert fs.cat(path) == payload
    with fs.open(path, "rb") as handle:
        handle.seek(1000)
        assert handle.read(10) == payload[1000:1010]
    listed = sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(f"{root}/cards/model/v1"))
    assert listed == ["meta.json", "weights.bin"]
    assert fs.info(path)["size"] == len(payload)

    fs.rm(path)
    fs.invalidate_cache()
    assert not fs.exists(path)
    assert fs.exists(f"{root}/cards/model/v1/meta.json")


def _peak_rss_growth(action: Callable[[], None]) -> int:
    process = psutil.Process()
    gc.collect()
    baseline = process.memory_info().rss
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            done.wait(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        action()
    finally:
        done.set()
        sampler.join()
    return max(peak, process.memory_info().rss) - baseline


def _stream(location: StorageLocation, name: str, chunks: int) -> None:
    chunk = b"\xa5" * MiB  # one buffer reused: only the upload path may allocate
    with location.fs.open(f"{location.root}/{name}", "wb") as handle:
        for _ in range(chunks):
            handle.write(chunk)


def test_large_streaming_write_stays_in_bounded_memory(
    location: StorageLocation, storage_backend: StorageEmulator, record_property: Any
) -> None:
    # Warm-up with one three-part write: the client, the multipart operations' service models,
    # the connection pool and the allocator's arenas are set up once per process, not per
    # artifact (cold, the first S3 upload adds ~20 MiB, mostly botocore models). What is
    # measured from here on is the per-upload cost: the write buffers.
    _stream(location, "warmup.bin", 2 * S3_PART_SIZE // MiB + 1)
    growth = _peak_rss_growth(lambda: _stream(location, "large.bin", 64))
    record_property("rss_growth_mib", round(growth / MiB, 1))
    print(f"\n[{storage_backend.name}] 64 MiB streamed, peak RSS growth {growth / MiB:.1f} MiB")
    assert location.fs.info(f"{location.root}/large.bin")["size"] == 64 * MiB
    assert growth < RSS_BUDGET
