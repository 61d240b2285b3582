"""Downloads read one chunk ahead, and always close the file, whatever ends the stream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Generator

import pytest

from app.storage.download import read_ahead, thread_reader


def _served(chunks: Generator[bytes, None, None]) -> AsyncIterator[bytes]:
    """`chunks` as a local file's download serves them: read ahead in worker threads."""
    return read_ahead(*thread_reader(chunks), interruptible=False)


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
        return [chunk async for chunk in _served(source.generator())]

    assert asyncio.run(collect()) == [bytes([i]) * 4 for i in range(5)]
    assert source.closed


def test_the_next_chunk_is_read_while_the_current_one_is_sent() -> None:
    source = _Source(chunks=5)

    async def first_chunk_then_look() -> int:
        stream = _served(source.generator())
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
        stream = _served(source.generator())
        await anext(stream)
        await stream.aclose()

    asyncio.run(abandon())
    assert source.closed
    assert source.reads < 100


def test_a_storage_error_mid_stream_reaches_the_server_and_closes_the_file() -> None:
    source = _Source(chunks=10, fail_at=3)

    async def drain() -> int:
        count = 0
        async for _ in _served(source.generator()):
            count += 1
        return count

    with pytest.raises(OSError, match="storage went away"):
        asyncio.run(drain())
    assert source.closed


def test_leaving_while_a_thread_read_is_in_flight_closes_the_file_after_that_read() -> None:
    source = _Source(chunks=10)
    slow = source.generator()

    def slow_chunks() -> Generator[bytes, None, None]:
        try:
            for chunk in slow:
                time.sleep(0.1)  # the read of the next chunk is still running when we leave
                yield chunk
        finally:
            slow.close()

    async def leave_early() -> None:
        stream = _served(slow_chunks())
        await anext(stream)
        await asyncio.sleep(0.05)  # the worker thread is inside the next read now
        await stream.aclose()

    asyncio.run(leave_early())  # closing a generator mid-read would raise ValueError
    assert source.closed
    assert source.reads == 2


def test_leaving_mid_stream_cancels_a_network_read_in_flight_and_closes_the_stream() -> None:
    events: list[str] = []

    async def scenario() -> None:
        served = 0

        async def read_next() -> bytes:
            nonlocal served
            served += 1
            if served > 1:
                try:
                    await asyncio.Event().wait()  # a GET that stalls
                except asyncio.CancelledError:
                    events.append("read cancelled")
                    raise
            return b"chunk"

        async def close() -> None:
            events.append("closed")

        stream = read_ahead(read_next, close, interruptible=True)
        assert await anext(stream) == b"chunk"
        await asyncio.sleep(0)  # the second read is now waiting on the network
        await asyncio.wait_for(stream.aclose(), timeout=5)

    asyncio.run(scenario())
    assert events == ["read cancelled", "closed"]
