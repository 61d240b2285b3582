"""Object reads for downloads: S3/GCS streams resume after a cut, Azure reads in ranges.

Fake bodies pin down the resume logic; the real emulators show that a resumed GET returns the
rest of the same object, and refuses once the object has been replaced. Azure's ranged reads
run end to end in the backend API tests; here, their order and a blob that shrinks.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
from fsspec.asyn import sync

from app.storage.backends import open_filesystem
from app.storage.object_stream import (
    MAX_RESUMES,
    RANGE_SIZE,
    Body,
    IncompleteObjectError,
    ObjectStream,
    open_body,
    open_ranged_reads,
)
from tests.support.emulators import StorageEmulator

MiB = 1024 * 1024
PIECE = 100 * 1024  # a network read returns what has arrived, never a whole chunk


class _FakeObject:
    """An object served in pieces; `cut_at` ends a body early (an error or a clean EOF)."""

    def __init__(self, data: bytes, cut_at: list[int], fail_with: type[Exception] | None) -> None:
        self.data = data
        self.cut_at = cut_at
        self.fail_with = fail_with
        self.opened_at: list[int] = []

    async def open(self, offset: int) -> Body:
        self.opened_at.append(offset)
        position = offset
        cut = self.cut_at.pop(0) if self.cut_at else len(self.data)

        async def read(size: int) -> bytes:
            nonlocal position
            if position >= cut:
                if self.fail_with is not None and cut < len(self.data):
                    raise self.fail_with("connection reset mid-body")
                return b""
            piece = self.data[position : min(position + size, position + PIECE, cut)]
            position += len(piece)
            return piece

        return Body(
            read=read,
            close=lambda: None,
            size=len(self.data),
            transient=(ConnectionError,),
            reopen=self.open,
        )


def _read_all(body: Body, chunk: int = MiB) -> bytes:
    async def drain() -> bytes:
        stream = ObjectStream(asyncio.get_running_loop(), body)
        parts = []
        while part := await stream.read(chunk):
            parts.append(part)
        await stream.close()
        return b"".join(parts)

    return asyncio.run(drain())


@pytest.mark.parametrize("fail_with", [ConnectionResetError, None], ids=["error", "early-eof"])
def test_a_body_cut_mid_way_resumes_from_the_next_byte(fail_with: Any) -> None:
    data = os.urandom(5 * MiB + 123)
    served = _FakeObject(data, cut_at=[3 * MiB // 2, 4 * MiB + 7], fail_with=fail_with)
    first = asyncio.run(served.open(0))
    assert _read_all(first) == data
    assert served.opened_at == [0, 3 * MiB // 2, 4 * MiB + 7]


def test_resuming_stops_after_the_limit_with_a_clear_error() -> None:
    data = os.urandom(2 * MiB)
    cuts = [MiB + 10 * i for i in range(MAX_RESUMES + 1)]
    served = _FakeObject(data, cut_at=cuts, fail_with=ConnectionResetError)
    with pytest.raises(IncompleteObjectError, match=f"after {MAX_RESUMES} resumes"):
        _read_all(asyncio.run(served.open(0)))
    assert len(served.opened_at) == MAX_RESUMES + 1


def test_an_error_that_is_not_transient_is_not_retried() -> None:
    data = os.urandom(MiB)
    served = _FakeObject(data, cut_at=[1000], fail_with=PermissionError)
    with pytest.raises(PermissionError):
        _read_all(asyncio.run(served.open(0)))
    assert served.opened_at == [0]


@pytest.fixture(params=["s3", "gcs"])
def streamed_store(request: pytest.FixtureRequest) -> StorageEmulator:
    fixture = {"s3": "moto_s3", "gcs": "fake_gcs"}[request.param]
    emulator: StorageEmulator = request.getfixturevalue(fixture).fresh()
    return emulator


def _stored(emulator: StorageEmulator, size: int) -> tuple[Any, str, bytes, Body]:
    """A fresh object of `size` random bytes, and its GET opened (nothing read yet)."""
    location = open_filesystem(emulator.storage_uri, dict(emulator.env))
    fs, path = location.fs, f"{location.root}/model.bin"
    data = os.urandom(size)
    fs.pipe_file(path, data)
    body: Body = sync(fs.loop, open_body, fs, location.scheme, path)
    return fs, path, data, body


def test_a_resumed_get_on_the_real_store_continues_the_same_object(
    streamed_store: StorageEmulator,
) -> None:
    fs, path, data, body = _stored(streamed_store, 3 * MiB + 5)
    assert body.size == len(data)
    sync(fs.loop, body.release)

    offset = MiB + 3
    rest: Body = sync(fs.loop, body.reopen, offset)
    assert rest.size == len(data)
    assert sync(fs.loop, _drain, rest) == data[offset:]

    # Replaced since the first byte was read: resuming refuses instead of mixing versions.
    fs.pipe_file(path, os.urandom(len(data)))
    with pytest.raises(OSError):  # S3: 412 on the ETag; GCS: the generation is gone (404)
        sync(fs.loop, body.reopen, offset)


def test_a_stream_whose_connection_drops_still_delivers_every_byte(
    streamed_store: StorageEmulator,
) -> None:
    fs, _, data, body = _stored(streamed_store, 4 * MiB + 11)

    async def read_with_a_drop() -> bytes:
        stream = ObjectStream(fs.loop, body)
        first = await stream.read(MiB)
        # The connection goes away under the stream (closed on its own loop, as a reset is).
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(body.release(), fs.loop))
        parts = [first]
        while part := await stream.read(MiB):
            parts.append(part)
        await stream.close()
        return b"".join(parts)

    assert asyncio.run(read_with_a_drop()) == data


async def _drain(body: Body) -> bytes:
    parts = []
    while part := await body.read(MiB):
        parts.append(part)
    await body.release()
    return b"".join(parts)


class _FakeRangedFs:
    """adlfs's two calls, served from memory on the running loop; records each range."""

    def __init__(self, data: bytes, shrink_to: int | None = None) -> None:
        self.data = data
        self.shrink_to = shrink_to
        self.ranges: list[tuple[int, int]] = []
        self.loop: asyncio.AbstractEventLoop | None = None

    async def _info(self, path: str) -> dict[str, Any]:
        return {"type": "file", "size": len(self.data)}

    async def _cat_file(self, path: str, start: int, end: int) -> bytes:
        self.ranges.append((start, end))
        if self.shrink_to is not None:
            self.data = self.data[: self.shrink_to]
        return self.data[start:end]


def _read_ranged(fs: _FakeRangedFs) -> bytes:
    async def drain() -> bytes:
        fs.loop = asyncio.get_running_loop()
        reader = await open_ranged_reads(fs, "container/blob")
        parts = []
        while part := await reader.read(reader.chunk_size):
            parts.append(part)
        return b"".join(parts)

    return asyncio.run(drain())


def test_ranged_reads_cover_the_blob_once_in_order() -> None:
    data = os.urandom(2 * RANGE_SIZE + 5)
    fs = _FakeRangedFs(data)
    assert _read_ranged(fs) == data
    assert fs.ranges == [(0, RANGE_SIZE), (RANGE_SIZE, 2 * RANGE_SIZE), (2 * RANGE_SIZE, len(data))]


def test_a_blob_that_shrinks_mid_download_ends_it_with_an_error() -> None:
    fs = _FakeRangedFs(os.urandom(3 * RANGE_SIZE), shrink_to=RANGE_SIZE)
    with pytest.raises(IncompleteObjectError, match=f"no bytes at {RANGE_SIZE}"):
        _read_ranged(fs)
