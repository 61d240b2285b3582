"""Wire-level helpers: the client's multipart upload, sent slowly, in part, or raw."""

from __future__ import annotations

import asyncio
import hashlib
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

BOUNDARY = "opsmlProductionBoundary7MA4YWxkTrZu0gW"


def multipart_parts(filename: str = "blob.bin") -> tuple[bytes, bytes]:
    head = (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    return head, tail


def upload_headers(write_path: str, size: int) -> dict[str, str]:
    head, tail = multipart_parts()
    return {
        "write_path": write_path,
        "content-type": f"multipart/form-data; boundary={BOUNDARY}",
        "content-length": str(len(head) + size + len(tail)),
    }


def slow_body(data: bytes, chunk: int, pause_s: float, on_chunk=None) -> Iterator[bytes]:
    """The multipart body in `chunk`-sized pieces with a pause after each."""
    head, tail = multipart_parts()
    yield head
    for index, start in enumerate(range(0, len(data), chunk)):
        yield data[start : start + chunk]
        if on_chunk is not None:
            on_chunk(index)
        time.sleep(pause_s)
    yield tail


def start_upload(
    port: int, write_path: str, data: bytes, sent: int, timeout_s: float = 30
) -> tuple[socket.socket, bytes]:
    """Announce the whole multipart body, send its first `sent` bytes; the rest is returned."""
    head, tail = multipart_parts()
    body = head + data + tail
    request = (
        "POST /opsml/files/upload HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        f"write_path: {write_path}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
    sock.sendall(request + body[:sent])
    return sock, body[sent:]


def send_half_and_close(port: int, write_path: str, data: bytes) -> None:
    """A client that announces the whole body, sends half of it, and hangs up."""
    head, tail = multipart_parts()
    half = (len(head) + len(data) + len(tail)) // 2
    sock, _ = start_upload(port, write_path, data, half, timeout_s=10)
    with sock:
        time.sleep(0.5)  # let the server start writing before the client vanishes


def raw_request(port: int, data: bytes, timeout_s: float = 10.0, half_close: bool = True) -> bytes:
    """Send bytes as they are and return whatever comes back before the server closes.

    `half_close` ends our side at once (for requests the HTTP layer refuses); a request that
    reaches the app needs the socket open until it answers (uvicorn drops it on EOF).
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def send_then_wait(
    port: int, head: bytes, drip: bytes = b"", every_s: float = 0.5, give_up_s: float = 30.0
) -> tuple[float, bytes]:
    """Send `head`, then one byte of `drip` every `every_s` (nothing once it runs out), until
    the server answers or closes. Returns the seconds that took and what came back."""
    started = time.monotonic()
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        position = 0
        while time.monotonic() - started < give_up_s:
            readable, _, _ = select.select([sock], [], [], every_s)
            if readable:
                try:
                    while chunk := sock.recv(65536):
                        received += chunk
                except ConnectionResetError:
                    pass
                return time.monotonic() - started, received
            if position < len(drip):
                try:
                    sock.sendall(drip[position : position + 1])
                except (BrokenPipeError, ConnectionResetError):
                    continue  # closed by the server: read what it said
                position += 1
    return time.monotonic() - started, received


async def trickle_head(port: int, every_s: float, give_up_s: float) -> float | None:
    """A Slowloris connection: a request head that never ends, one byte per `every_s`.

    Returns the seconds until the server closed it, or None if it was still open at
    `give_up_s`.
    """
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        while time.monotonic() - started < give_up_s:
            try:
                await asyncio.wait_for(reader.read(65536), every_s)
            except TimeoutError:
                try:
                    writer.write(b"z")
                    await writer.drain()
                except ConnectionError:
                    return time.monotonic() - started
                continue
            except ConnectionError:
                pass
            return time.monotonic() - started  # an answer (408) or EOF: the server is done
        return None
    finally:
        writer.close()
