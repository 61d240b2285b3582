"""Per-backend throughput: through the server vs. fsspec talking to the same emulator directly.

The emulators are the real local stand-ins the tests use (moto server, fake-gcs-server,
Azurite); numbers say how much the server adds on top of the storage client, not how fast a
cloud is.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from app.storage.backends import open_filesystem
from app.storage.object_stream import OBJECT_SCHEMES, open_object_reader
from app.storage.store import READ_CACHE, read_chunk_size
from app.storage.upload import FLUSH_SIZE
from bench.harness import RssSampler, curl_download, curl_upload, server, tree_rss
from bench.transfer import WRITE_PATH, best_of
from tests.support.emulators import StorageEmulator, local_storage, start_azure, start_gcs, start_s3

SIZE = 128 * 1024 * 1024
# A 128 MiB read from fake-gcs-server takes ~0.1 s: best of 5 keeps one slow run (another
# process scheduled on one of the two cores) from deciding a ratio.
RUNS = 5


@dataclass
class BackendResult:
    """MB/s per way of moving the artifact; `direct_server_read_mb_s` only for object stores.

    The targets compare with `direct_read_mb_s`: fsspec's file API, the way an fsspec user
    reads an object. The server reads objects its own way instead (`app.storage.object_stream`:
    one streamed GET from S3 and GCS, 2 MiB ranged GETs from Azure); `direct_server_read_mb_s`
    is that same read without the server, so the table also shows what serving over HTTP
    costs on top of it.
    """

    backend: str
    direct_write_mb_s: float
    direct_read_mb_s: float
    direct_server_read_mb_s: float | None
    upload_mb_s: float
    download_mb_s: float
    rss_growth_mb: float


def _direct(emulator: StorageEmulator, source: Path) -> tuple[float, float, float | None]:
    location = open_filesystem(emulator.storage_uri, dict(emulator.env))
    path = f"{location.root}/direct/blob.bin"
    write_s = read_s = server_read_s = float("inf")
    is_object_store = location.scheme in OBJECT_SCHEMES
    for _ in range(RUNS):
        started = time.perf_counter()
        # Written as the server writes: its filesystem's block size, its slice size.
        with open(source, "rb") as src, location.fs.open(path, "wb") as dst:
            while chunk := src.read(FLUSH_SIZE):
                dst.write(chunk)
        write_s = min(write_s, time.perf_counter() - started)
        started = time.perf_counter()
        read_size = read_chunk_size(location)  # read as the server reads a file handle
        with location.fs.open(path, "rb", block_size=read_size, cache_type=READ_CACHE) as handle:
            while handle.read(read_size):
                pass
        read_s = min(read_s, time.perf_counter() - started)
        if is_object_store:
            started = time.perf_counter()
            asyncio.run(_read_as_the_server(location.fs, location.scheme, path))
            server_read_s = min(server_read_s, time.perf_counter() - started)
    server_read = SIZE / server_read_s / 1e6 if is_object_store else None
    return SIZE / write_s / 1e6, SIZE / read_s / 1e6, server_read


async def _read_as_the_server(fs: object, scheme: str, path: str) -> None:
    # As the server reads: from another event loop, one chunk per hop to the fsspec loop.
    reader = await open_object_reader(fs, scheme, path)
    try:
        while await reader.read(reader.chunk_size):
            pass
    finally:
        await reader.close()


def _through_server(
    emulator: StorageEmulator, work: Path, source: Path
) -> tuple[float, float, float]:
    env = {**emulator.env, "OPSML_TRACKING_URI": f"sqlite:///{work / f'{emulator.name}.db'}"}
    with server(env, log_path=work / f"{emulator.name}.log") as srv:
        upload = curl_upload(srv.url, source, WRITE_PATH)
        download = curl_download(srv.url, WRITE_PATH)
        # Warm up with a small artifact first: the SDKs load their service models and
        # connection pools on first use, which is start-up cost, not per-artifact growth.
        warm = work / "warm.bin"
        warm.write_bytes(os.urandom(9 * 1024 * 1024))
        best_of(1, curl_upload(srv.url, warm, WRITE_PATH))
        best_of(1, download)
        idle = tree_rss(srv.pid)
        with RssSampler(srv.pid) as sampler:
            upload_s = best_of(RUNS, upload)
            download_s = best_of(RUNS, download)
        return SIZE / upload_s / 1e6, SIZE / download_s / 1e6, (sampler.peak - idle) / 1e6


def run() -> list[BackendResult]:
    results = []
    with tempfile.TemporaryDirectory(prefix="opsml-bench-backends-") as tmp:
        work = Path(tmp)
        source = work / "source.bin"
        source.write_bytes(os.urandom(SIZE))
        starters: list[tuple[str, Callable[[Path], AbstractContextManager[StorageEmulator]]]] = [
            ("local", _local),
            ("s3", start_s3),
            ("gcs", start_gcs),
            ("azure", start_azure),
        ]
        for name, start in starters:
            (work / name).mkdir()
            with start(work / name) as emulator:
                direct_write, direct_read, direct_server_read = _direct(emulator, source)
                upload, download, growth = _through_server(emulator, work, source)
            results.append(
                BackendResult(
                    name, direct_write, direct_read, direct_server_read, upload, download, growth
                )
            )
    return results


class _local(AbstractContextManager[StorageEmulator]):
    def __init__(self, base: Path) -> None:
        self.emulator = local_storage(base)

    def __enter__(self) -> StorageEmulator:
        return self.emulator.fresh()

    def __exit__(self, *_: object) -> None:
        return None


__all__ = ["BackendResult", "run"]
