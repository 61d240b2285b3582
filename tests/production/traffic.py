"""Wire-level helpers: the client's multipart upload, sent slowly, in part, or raw."""

from __future__ import annotations

import hashlib
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


def send_half_and_close(port: int, write_path: str, data: bytes) -> None:
    """A client that announces the whole body, sends half of it, and hangs up."""
    head, tail = multipart_parts()
    body = head + data + tail
    request = (
        "POST /opsml/files/upload HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        f"write_path: {write_path}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request + body[: len(body) // 2])
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
