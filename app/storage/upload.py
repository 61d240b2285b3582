"""Stream a multipart upload (one part named `file`) straight into storage.

The body is parsed as it arrives and written in bounded slices, so a 1 GiB artifact never sits
in memory or in a temporary file. If the client goes away, the body is cut short, or storage
fails, the artifact is aborted and nothing is left behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request

from app.errors import InvalidRequestError
from app.storage.store import ArtifactWriter

# Bytes gathered before one write to storage: large enough for full-speed disk and object
# store writes, small enough that memory stays flat whatever the artifact size.
FLUSH_SIZE = 4 * 1024 * 1024
FILE_FIELD = "file"

ERR_NOT_MULTIPART = "Upload must be multipart/form-data with a boundary"
ERR_NO_FILE = "File is missing: send one multipart part named 'file'"
ERR_INCOMPLETE = "Upload was cut off before the multipart body ended; nothing was stored"
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
    pending: bytearray = field(default_factory=bytearray)


def _boundary(request: Request) -> bytes:
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise InvalidRequestError(ERR_NOT_MULTIPART)
    return boundary


async def receive_upload(request: Request, writer: ArtifactWriter, max_bytes: int) -> int:
    """Parse the body into `writer`; returns the artifact's size. Aborts the writer on error."""
    state = _PartState()
    parser = MultipartParser(_boundary(request), _callbacks(state))
    received = 0
    await run_in_threadpool(writer.open)
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes:
                raise UploadTooLargeError(ERR_TOO_LARGE.format(limit=max_bytes))
            parser.write(chunk)
            if len(state.pending) >= FLUSH_SIZE:
                await _flush(state, writer)
        parser.finalize()
        if not state.seen_file:
            raise InvalidRequestError(ERR_NO_FILE)
        if not (state.ended and state.file_done):
            raise InvalidRequestError(ERR_INCOMPLETE)
        await _flush(state, writer)
        await run_in_threadpool(writer.commit)
    except ClientDisconnect:
        await run_in_threadpool(writer.abort)
        raise InvalidRequestError(ERR_INCOMPLETE) from None
    except BaseException:
        await run_in_threadpool(writer.abort)
        raise
    return writer.bytes_written


async def _flush(state: _PartState, writer: ArtifactWriter) -> None:
    if state.pending:
        data = bytes(state.pending)
        state.pending.clear()
        await run_in_threadpool(writer.write, data)


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
            state.pending += data[start:end]

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
