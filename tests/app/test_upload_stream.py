"""The streaming multipart parser against bodies cut at every awkward place."""

from __future__ import annotations

import asyncio
import os
import random
from pathlib import Path

import pytest
from starlette.requests import Request

from app.errors import InvalidRequestError
from app.storage.backends import open_filesystem
from app.storage.store import ArtifactStore
from app.storage.upload import ERR_INCOMPLETE, receive_upload

BOUNDARY = "b0undary"


def _body(payload: bytes) -> bytes:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="meta"\r\n\r\nignored\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + payload + f"\r\n--{BOUNDARY}--\r\n".encode()


def _request(chunks: list[bytes]) -> Request:
    messages = [{"type": "http.request", "body": c, "more_body": True} for c in chunks]
    messages.append({"type": "http.request", "body": b"", "more_body": False})

    async def receive() -> dict[str, object]:
        return messages.pop(0)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [(b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode())],
    }
    return Request(scope, receive)


def _store(tmp_path: Path) -> ArtifactStore:
    (tmp_path / "root").mkdir(exist_ok=True)
    return ArtifactStore(open_filesystem(str(tmp_path / "root"), {}))


def _split(body: bytes, rng: random.Random) -> list[bytes]:
    chunks, i = [], 0
    while i < len(body):
        n = rng.choice([1, 2, 3, 7, 64, 1000, 65536, 300_000])
        chunks.append(body[i : i + n])
        i += n
    return chunks


@pytest.mark.parametrize("seed", range(6))
def test_payload_survives_any_chunking(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    # Bytes that look like the boundary and CRLFs inside the payload must come through intact.
    payload = (
        os.urandom(5 * 1024 * 1024)
        + f"\r\n--{BOUNDARY[:-1]}".encode()
        + b"\r\n--"
        + os.urandom(70_001)
    )
    store = _store(tmp_path)
    path = "opsml-root:/OPSML_DATA_REGISTRY/r/n/v1.0.0/f.bin"
    size = asyncio.run(
        receive_upload(_request(_split(_body(payload), rng)), store.writer(path), 10**9)
    )
    assert size == len(payload)
    chunks, _ = store.stream(path)
    assert b"".join(chunks) == payload


def test_body_without_closing_boundary_stores_nothing(tmp_path: Path) -> None:
    body = _body(os.urandom(1_000_000))[:-20]
    store = _store(tmp_path)
    with pytest.raises(InvalidRequestError, match=ERR_INCOMPLETE):
        asyncio.run(receive_upload(_request([body]), store.writer("opsml-root:/x/f"), 10**9))
    assert [p for p in (tmp_path / "root").rglob("*") if p.is_file()] == []
