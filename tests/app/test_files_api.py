"""Artifact routes: streaming round trips, listing, deletion, and hostile paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.storage import paths
from app.storage.upload import ERR_INCOMPLETE, ERR_NO_FILE

ROOT = "opsml-root:/OPSML_DATA_REGISTRY/repo/name/v1.0.0"


def upload(client: TestClient, write_path: str, data: bytes, filename: str = "blob.bin"):
    return client.post(
        "/opsml/files/upload", headers={"write_path": write_path}, files={"file": (filename, data)}
    )


def test_upload_download_list_exists_delete(client: TestClient) -> None:
    payload = os.urandom(3 * 1024 * 1024 + 17)  # spans several flushes
    response = upload(client, f"{ROOT}/data/blob.bin", payload)
    assert response.status_code == 200, response.text
    assert response.json()["storage_uri"]

    download = client.get("/opsml/files/download", params={"path": f"{ROOT}/data/blob.bin"})
    assert download.status_code == 200 and download.content == payload
    assert download.headers["content-type"] == "application/octet-stream"

    upload(client, f"{ROOT}/card.json", b"{}")
    listed = client.get("/opsml/files/list", params={"path": ROOT}).json()["files"]
    assert listed == [f"{ROOT}/card.json", f"{ROOT}/data/blob.bin"]
    # A file lists itself; a missing path lists nothing.
    assert client.get("/opsml/files/list", params={"path": f"{ROOT}/card.json"}).json() == {
        "files": [f"{ROOT}/card.json"]
    }
    assert client.get("/opsml/files/list", params={"path": f"{ROOT}/missing"}).json() == {
        "files": []
    }

    assert client.get("/opsml/files/exists", params={"path": f"{ROOT}/card.json"}).json() == {
        "exists": True
    }
    assert client.get("/opsml/files/delete", params={"path": ROOT}).json() == {"deleted": True}
    assert client.get("/opsml/files/exists", params={"path": f"{ROOT}/card.json"}).json() == {
        "exists": False
    }
    # Deleting again is fine.
    assert client.get("/opsml/files/delete", params={"path": ROOT}).json() == {"deleted": True}


def test_download_of_missing_file_is_404(client: TestClient) -> None:
    response = client.get("/opsml/files/download", params={"path": f"{ROOT}/nope.bin"})
    assert response.status_code == 404
    assert "No artifact" in response.json()["detail"]


def test_upload_without_write_path_or_file_part_is_rejected(client: TestClient) -> None:
    response = client.post("/opsml/files/upload", files={"file": ("a", b"x")})
    assert response.status_code == 400 and "write_path" in response.json()["detail"]
    response = client.post(
        "/opsml/files/upload", headers={"write_path": f"{ROOT}/a"}, files={"other": ("a", b"x")}
    )
    assert response.status_code == 400 and response.json()["detail"] == ERR_NO_FILE
    response = client.post(
        "/opsml/files/upload", headers={"write_path": f"{ROOT}/a"}, content=b"raw"
    )
    assert response.status_code == 400


def test_truncated_upload_leaves_nothing_behind(client: TestClient, tmp_path: Path) -> None:
    boundary = "XyZ"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + os.urandom(5 * 1024 * 1024)
    response = client.post(  # the closing boundary never arrives
        "/opsml/files/upload",
        content=body,
        headers={
            "write_path": f"{ROOT}/cut.bin",
            "content-type": f"multipart/form-data; boundary={boundary}",
        },
    )
    assert response.status_code == 400 and response.json()["detail"] == ERR_INCOMPLETE
    storage = tmp_path / "artifacts"
    assert [p for p in storage.rglob("*") if p.is_file()] == []


def test_oversize_upload_is_413_and_not_stored(make_client, tmp_path: Path) -> None:
    client = make_client(OPSML_MAX_UPLOAD_BYTES=1024)
    response = upload(client, f"{ROOT}/big.bin", os.urandom(4096))
    assert response.status_code == 413
    assert [p for p in (tmp_path / "artifacts").rglob("*") if p.is_file()] == []


HOSTILE = [
    ("opsml-root:/../../etc/passwd", paths.ERR_PARENT_SEGMENT),
    ("opsml-root:/OPSML_DATA_REGISTRY/../../x", paths.ERR_PARENT_SEGMENT),
    ("/etc/passwd", paths.ERR_NOT_OPSML_ROOT),
    ("file:///etc/passwd", paths.ERR_NOT_OPSML_ROOT),
    ("opsml-root:/a\\..\\..\\b", paths.ERR_BAD_CHARACTER),
    ("opsml-root:/a\x00b", paths.ERR_BAD_CHARACTER),
    ("opsml-root:/" + "a/" * 600, paths.ERR_TOO_LONG),
    ("", paths.ERR_EMPTY),
]


@pytest.mark.parametrize(("path", "message"), HOSTILE)
def test_hostile_paths_are_refused_everywhere(
    client: TestClient, tmp_path: Path, path: str, message: str
) -> None:
    for route in ("download", "list", "exists", "delete"):
        response = client.get(f"/opsml/files/{route}", params={"path": path})
        assert response.status_code in (400, 422), (route, response.text)
        if response.status_code == 400:
            assert response.json()["detail"] == message
    response = upload(client, path, b"owned") if path and "\x00" not in path else None
    if response is not None:
        assert response.status_code in (400, 422)
    outside = [
        p
        for p in tmp_path.rglob("*")
        if p.is_file()
        and "artifacts" not in p.parts
        and p.suffix not in (".db", ".db-wal", ".db-shm", ".lock")
    ]
    assert outside == []


def test_encoded_traversal_stays_literal_and_inside(client: TestClient, tmp_path: Path) -> None:
    # %2e%2e arrives decoded once by the HTTP layer, i.e. as '..': refused, not resolved.
    response = client.get("/opsml/files/list?path=opsml-root:/%2e%2e/%2e%2e/etc")
    assert response.status_code == 400
    # Doubly encoded stays a literal, harmless name inside the root.
    response = upload(client, "opsml-root:/OPSML_DATA_REGISTRY/%252e%252e/x", b"ok")
    assert response.status_code == 200
    assert (tmp_path / "artifacts" / "OPSML_DATA_REGISTRY" / "%252e%252e" / "x").is_file()
