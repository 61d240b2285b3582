"""Stream an artifact to the client while the next chunk is already being read.

Served naively, a download alternates: read a chunk from storage, send it, read the next, and
the client waits for both in turn. Here one read is always in flight while the previous chunk
is sent, which roughly halved download time on a remote store (fake-gcs-server: 0.53x direct
fsspec before). Memory stays at two chunks per download.

Objects in S3, GCS and Azure are read on the filesystem's own loop (`app.storage.object_stream`);
local files through an fsspec file handle, read in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from dataclasses import dataclass

import anyio
from starlette.concurrency import run_in_threadpool

from app.storage.object_stream import OBJECT_SCHEMES, open_object_reader
from app.storage.store import ArtifactStore, read_errors

ReadNext = Callable[[], Awaitable[bytes]]  # the next chunk, b"" once the artifact has ended
Close = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Download:
    chunks: AsyncIterator[bytes]
    size: int | None  # None when the backend cannot say (then the response is chunked)


async def open_download(store: ArtifactStore, client_path: str) -> Download:
    """Open `client_path` for streaming; NotFoundError if it is not a file, before any byte."""
    scheme = store.location.scheme
    if scheme not in OBJECT_SCHEMES:
        chunks, size = await run_in_threadpool(store.stream, client_path)
        read_next, close = thread_reader(chunks)
        return Download(read_ahead(read_next, close, interruptible=False), size)
    path = store.storage_path(client_path)
    with read_errors(client_path):
        reader = await open_object_reader(store.fs, scheme, path)

    async def read_object() -> bytes:
        with read_errors(client_path):
            return await reader.read(reader.chunk_size)

    return Download(read_ahead(read_object, reader.close, interruptible=True), reader.size)


async def read_ahead(
    read_next: ReadNext, close: Close, *, interruptible: bool
) -> AsyncIterator[bytes]:
    """Every chunk `read_next` gives, each read one step ahead of the sender; then `close`.

    When the stream ends early (client gone, storage failed), a read still in flight is
    cancelled if it is `interruptible` (a network read on an event loop), and otherwise
    waited for: a read in a worker thread cannot be stopped, and a generator cannot be
    closed while a thread runs it. Only then is the source closed.
    """
    pending = asyncio.ensure_future(read_next())
    try:
        while chunk := await pending:
            pending = asyncio.ensure_future(read_next())
            yield chunk
    finally:
        with anyio.CancelScope(shield=True):
            if interruptible:
                pending.cancel()
            await asyncio.wait({pending})
            if not pending.cancelled():
                pending.exception()  # retrieved: a failed read nobody awaits is not an error
            await close()


def thread_reader(chunks: Generator[bytes, None, None]) -> tuple[ReadNext, Close]:
    """`read_next` and `close` for a blocking chunk generator, each run in a worker thread."""

    async def read_next() -> bytes:
        return await run_in_threadpool(next, chunks, b"")

    async def close() -> None:
        await run_in_threadpool(chunks.close)

    return read_next, close
