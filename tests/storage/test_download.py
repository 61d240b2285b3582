"""Downloads read one chunk ahead, and always close the file, whatever ends the stream."""

from __future__ import annotations

import asyncio
from collections.abc import Generator

import pytest

from app.storage.download import read_ahead


class _Source:
    """A file-like chunk generator that records reads, overlap and closing."""

    def __init__(self, chunks: int, fail_at: int | None = None) -> None:
        self.chunks = chunks
        self.fail_at = fail_at
        self.reads = 0
        self.closed = False

    def generator(self) -> Generator[bytes, None, None]:
        try:
            for index in range(self.chunks):
                if index == self.fail_at:
                    raise OSError("storage went away")
                self.reads += 1
                yield bytes([index]) * 4
        finally:
            self.closed = True


def test_every_chunk_arrives_in_order_and_the_file_is_closed() -> None:
    source = _Source(chunks=5)

    async def collect() -> list[bytes]:
        return [chunk async for chunk in read_ahead(source.generator())]

    assert asyncio.run(collect()) == [bytes([i]) * 4 for i in range(5)]
    assert source.closed


def test_the_next_chunk_is_read_while_the_current_one_is_sent() -> None:
    source = _Source(chunks=5)

    async def first_chunk_then_look() -> int:
        stream = read_ahead(source.generator())
        await anext(stream)
        await asyncio.sleep(0.2)  # the "send" of chunk 0; the read of chunk 1 runs meanwhile
        reads = source.reads
        await stream.aclose()
        return reads

    assert asyncio.run(first_chunk_then_look()) == 2
    assert source.closed


def test_a_client_that_goes_away_mid_stream_leaves_the_file_closed() -> None:
    source = _Source(chunks=100)

    async def abandon() -> None:
        stream = read_ahead(source.generator())
        await anext(stream)
        await stream.aclose()

    asyncio.run(abandon())
    assert source.closed
    assert source.reads < 100


def test_a_storage_error_mid_stream_reaches_the_server_and_closes_the_file() -> None:
    source = _Source(chunks=10, fail_at=3)

    async def drain() -> int:
        count = 0
        async for _ in read_ahead(source.generator()):
            count += 1
        return count

    with pytest.raises(OSError, match="storage went away"):
        asyncio.run(drain())
    assert source.closed
