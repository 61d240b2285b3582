"""Stream a multipart upload (one part named `file`) straight into storage.

The body is parsed as it arrives and written in bounded slices, so a 1 GiB artifact never sits
in memory or in a temporary file. If the client goes away, the body is cut short, or storage
fails, the artifact is aborted and nothing is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request

from app.errors import InvalidRequestError
from app.storage.store import ArtifactWriter

# Bytes gathered before one write to storage: large enough for full-speed disk and object
# store writes, small enough that memory stays flat whatever the artifact size.
FLUSH_SIZE = 2 * 1024 * 1024
# Slices waiting for storage while the next one is received: bounds memory at ~3 slices.
_QUEUE_DEPTH = 2
FILE_FIELD = "file"

ERR_NOT_MULTIPART = "Upload must be multipart/form-data with a boundary"
ERR_NO_FILE = "File is missing: send one multipart part named 'file'"
ERR_INCOMPLETE = "Upload was cut off before the body ended; nothing was stored"
ERR_TOO_LARGE = "Upload exceeds the server's limit of {limit} bytes"


class UploadTooLargeError(InvalidRequestError):
    """The body is larger than `OPSML_MAX_UPLOAD_BYTES` (413)."""


@dataclass
class _PartState:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    header_field: bytearray = field(default_factory=bytearray)
    header_value: bytearray = field(default_factory=bytearray)
    is_file: bool = False
    seen_file: bool = False
    file_done: bool = False
    ended: bool = False
    pending: _Slices = field(default_factory=lambda: _Slices())


def _boundary(request: Request) -> bytes:
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise InvalidRequestError(ERR_NOT_MULTIPART)
    return boundary


async def _body(request: Request, max_bytes: int) -> AsyncIterator[bytes]:
    received = 0
    async for raw in request.stream():
        chunk = bytes(raw)  # no copy for bytes; views into it below need it immutable
        received += len(chunk)
        if received > max_bytes:
            raise UploadTooLargeError(ERR_TOO_LARGE.format(limit=max_bytes))
        yield chunk


async def receive_upload(request: Request, writer: ArtifactWriter, max_bytes: int) -> int:
    """Stream a multipart body's `file` part into `writer`; returns the artifact's size."""
    state = _PartState()
    parser = MultipartParser(_boundary(request), cast(Any, _callbacks(state)))

    async def slices() -> AsyncIterator[list[memoryview]]:
        async for chunk in _body(request, max_bytes):
            parser.write(chunk)
            if state.pending.size >= FLUSH_SIZE:
                yield state.pending.take()
        parser.finalize()
        if not state.seen_file:
            raise InvalidRequestError(ERR_NO_FILE)
        if not (state.ended and state.file_done):
            raise InvalidRequestError(ERR_INCOMPLETE)
        yield state.pending.take()

    return await write_stream(slices(), writer)


async def receive_raw(request: Request, writer: ArtifactWriter, max_bytes: int) -> int:
    """Stream a raw body (a pre-signed PUT) into `writer`; a short body stores nothing."""
    expected = request.headers.get("content-length")
    pending = _Slices()

    async def slices() -> AsyncIterator[list[memoryview]]:
        async for chunk in _body(request, max_bytes):
            pending.add(memoryview(chunk))
            if pending.size >= FLUSH_SIZE:
                yield pending.take()
        yield pending.take()

    size = await write_stream(slices(), writer, expected_size=_int_or_none(expected))
    return size


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


class _Slices:
    """Views into received chunks, gathered until a write is worth a thread hop.

    Views, not copies: the chunks are immutable bytes, so the parser's slices of them can go
    to storage without being copied in Python at all.
    """

    def __init__(self) -> None:
        self.views: list[memoryview] = []
        self.size = 0

    def add(self, view: memoryview) -> None:
        if view.nbytes:
            self.views.append(view)
            self.size += view.nbytes

    def take(self) -> list[memoryview]:
        views, self.views, self.size = self.views, [], 0
        return views


async def write_stream(
    slices: AsyncIterator[list[memoryview]],
    writer: ArtifactWriter,
    expected_size: int | None = None,
) -> int:
    """Write slices as they come, commit at the end, abort on any error or disconnect.

    Receiving and writing overlap: a writer task drains a queue of at most `_QUEUE_DEPTH`
    slices while the event loop keeps reading the socket, so the upload runs at the speed of
    the slower side, not the sum of both, and memory stays bounded by the queue.
    """
    await run_in_threadpool(writer.open)
    queue: asyncio.Queue[list[memoryview] | None] = asyncio.Queue(maxsize=_QUEUE_DEPTH)
    drain = asyncio.create_task(_drain(queue, writer))
    try:
        async for data in slices:
            if drain.done():
                drain.result()  # the writer failed: surface its error now
            if data:
                await queue.put(data)
        await queue.put(None)
        await drain
        if expected_size is not None and writer.bytes_written != expected_size:
            raise InvalidRequestError(ERR_INCOMPLETE)
        await run_in_threadpool(writer.commit)
    except ClientDisconnect:
        await _stop(drain, writer)
        raise InvalidRequestError(ERR_INCOMPLETE) from None
    except asyncio.CancelledError:
        # Shutdown past uvicorn's graceful timeout cancels the request, and the worker exits
        # right after: a cleanup that waited for a thread hop would never run. Removing one
        # partial object is quick, so it happens here, on the loop.
        drain.cancel()
        writer.abort()
        raise
    except BaseException:
        await _stop(drain, writer)
        raise
    return writer.bytes_written


async def _drain(queue: asyncio.Queue[list[memoryview] | None], writer: ArtifactWriter) -> None:
    while (data := await queue.get()) is not None:
        await run_in_threadpool(writer.write, data)


async def _stop(drain: asyncio.Task[None], writer: ArtifactWriter) -> None:
    drain.cancel()
    with contextlib.suppress(BaseException):
        await drain
    await run_in_threadpool(writer.abort)


def _callbacks(state: _PartState) -> dict[str, object]:
    def on_part_begin() -> None:
        state.headers = {}
        state.is_file = False

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state.header_field += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state.header_value += data[start:end]

    def on_header_end() -> None:
        state.headers[bytes(state.header_field).lower()] = bytes(state.header_value)
        state.header_field.clear()
        state.header_value.clear()

    def on_headers_finished() -> None:
        _, options = parse_options_header(state.headers.get(b"content-disposition", b""))
        # Only the first `file` part is the artifact; anything else is ignored.
        state.is_file = options.get(b"name") == FILE_FIELD.encode() and not state.seen_file
        state.seen_file = state.seen_file or state.is_file

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state.is_file:
            state.pending.add(memoryview(data)[start:end])

    def on_part_end() -> None:
        if state.is_file:
            state.file_done = True
            state.is_file = False

    def on_end() -> None:
        state.ended = True

    return {
        "on_part_begin": on_part_begin,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data,
        "on_part_end": on_part_end,
        "on_end": on_end,
    }
