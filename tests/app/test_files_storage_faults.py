"""Writes that fail for a reason the client can act on say so: a full disk is a 507, an upload
whose folder is deleted meanwhile a 409; neither is "unreachable, try again" (503)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from app.storage.store import ERR_DELETED_DURING_UPLOAD, ERR_STORAGE_FULL
from tests.conftest import ClientFactory
from tests.production.traffic import multipart_parts, upload_headers
from tests.support.tmpfs import tmpfs

VERSION = "opsml-root:/OPSML_DATA_REGISTRY/repo/name/v1.0.0"
MiB = 1024 * 1024


def _upload(client: TestClient, write_path: str, data: bytes) -> httpx.Response:
    return client.post(
        "/opsml/files/upload", headers={"write_path": write_path}, files={"file": ("d", data)}
    )


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_a_full_disk_is_507_and_leaves_nothing(make_client: ClientFactory, tmp_path: Path) -> None:
    volume = tmp_path / "volume"
    with tmpfs(volume, size_kib=1024):
        client = make_client(OPSML_STORAGE_URI=str(volume))
        for name, size in (("big.bin", 3 * MiB), ("slice.bin", 1024 * 1024 + 1)):
            path = f"{VERSION}/{name}"
            response = _upload(client, path, os.urandom(size))
            assert response.status_code == 507, response.text
            assert response.json() == {"detail": ERR_STORAGE_FULL.format(path=path)}
            assert _files(volume) == []  # the partial file is gone, space is free again
        small = _upload(client, f"{VERSION}/small.bin", b"fits")
        assert small.status_code == 200, small.text
        assert client.get("/readyz").json()["checks"]["storage"] == "ok"


def test_an_upload_whose_folder_is_deleted_meanwhile_is_409(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    client = make_client()
    write_path = f"{VERSION}/model.bin"
    folder = tmp_path / "artifacts" / VERSION.removeprefix("opsml-root:/")
    payload = os.urandom(6 * MiB)

    async def body() -> AsyncIterator[bytes]:
        head, tail = multipart_parts()
        yield head + payload[: 3 * MiB]
        for _ in range(200):  # until the server has written the first slice
            if any(".upload-" in p.name for p in folder.glob(".*")):
                break
            await asyncio.sleep(0.02)
        # Another client deletes the card version (the real route, on the running app).
        deleted = client.get("/opsml/files/delete", params={"path": VERSION})
        assert deleted.status_code == 200, deleted.text
        yield payload[3 * MiB :] + tail

    async def race() -> httpx.Response:
        # httpx's ASGI transport feeds the body to the app as it is produced (TestClient
        # would read it whole first), on the app that `client` has started.
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return await http.post(
                "/opsml/files/upload",
                content=body(),
                headers=upload_headers(write_path, len(payload)),
            )

    response = asyncio.run(race())
    assert response.status_code == 409, response.text
    assert response.json() == {"detail": ERR_DELETED_DURING_UPLOAD.format(path=write_path)}
    assert not folder.exists()  # not re-created by the finishing upload
    assert client.get("/opsml/files/exists", params={"path": write_path}).json() == {
        "exists": False
    }
