"""The artifact routes on every storage backend (local dir, moto S3, fake-gcs-server, Azurite),
with the real Postgres behind them, plus pre-signed URLs fetched with a plain HTTP client."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from app.storage.backends import open_filesystem
from app.storage.presign import BAD_PUT_EXPIRY, MAX_PUT_EXPIRES_S
from app.storage.store import ERR_NOT_FOUND
from tests.support.emulators import StorageEmulator

ROOT = "opsml-root:/OPSML_MODEL_REGISTRY/repo/model/v1.0.0"


@pytest.fixture
def backend_client(
    storage_backend: StorageEmulator, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    for key, value in storage_backend.env.items():
        monkeypatch.setenv(key, value)
    settings = Settings(
        OPSML_TRACKING_URI=postgres_url, OPSML_STORAGE_URI=storage_backend.storage_uri
    )
    with TestClient(create_app(settings, login=False), raise_server_exceptions=False) as client:
        yield client


def _objects(emulator: StorageEmulator) -> list[str]:
    location = open_filesystem(emulator.storage_uri, dict(emulator.env))
    location.fs.invalidate_cache()
    try:
        return sorted(location.fs.find(location.root))
    except FileNotFoundError:
        return []


def test_round_trip_list_and_delete(
    backend_client: TestClient, storage_backend: StorageEmulator
) -> None:
    payload = os.urandom(9 * 1024 * 1024 + 3)  # several 2 MiB slices and 8 MiB blocks
    response = backend_client.post(
        "/opsml/files/upload",
        headers={"write_path": f"{ROOT}/model.bin"},
        files={"file": ("model.bin", payload)},
    )
    assert response.status_code == 200, response.text
    backend_client.post(
        "/opsml/files/upload",
        headers={"write_path": f"{ROOT}/meta/card.json"},
        files={"file": ("card.json", b'{"a": 1}')},
    )
    download = backend_client.get("/opsml/files/download", params={"path": f"{ROOT}/model.bin"})
    assert download.status_code == 200 and download.content == payload
    listed = backend_client.get("/opsml/files/list", params={"path": ROOT}).json()["files"]
    assert listed == [f"{ROOT}/meta/card.json", f"{ROOT}/model.bin"]
    assert backend_client.get(
        "/opsml/files/exists", params={"path": f"{ROOT}/model.bin"}
    ).json() == {"exists": True}
    assert backend_client.get("/opsml/files/delete", params={"path": ROOT}).json() == {
        "deleted": True
    }
    assert backend_client.get("/opsml/files/list", params={"path": ROOT}).json() == {"files": []}
    assert _objects(storage_backend) == []


def test_download_of_a_missing_object_or_a_prefix_is_404(backend_client: TestClient) -> None:
    backend_client.post(
        "/opsml/files/upload",
        headers={"write_path": f"{ROOT}/dir/file.bin"},
        files={"file": ("file.bin", b"inside")},
    )
    for path in (f"{ROOT}/absent.bin", f"{ROOT}/dir"):
        response = backend_client.get("/opsml/files/download", params={"path": path})
        assert response.status_code == 404, (path, response.text)
        assert response.json()["detail"] == ERR_NOT_FOUND.format(path=path)


def test_download_announces_the_length_and_serves_empty_artifacts(
    backend_client: TestClient,
) -> None:
    for name, payload in (("empty.bin", b""), ("odd.bin", os.urandom(3 * 1024 * 1024 + 17))):
        backend_client.post(
            "/opsml/files/upload",
            headers={"write_path": f"{ROOT}/{name}"},
            files={"file": (name, payload)},
        )
        response = backend_client.get("/opsml/files/download", params={"path": f"{ROOT}/{name}"})
        assert response.status_code == 200
        assert response.headers["content-length"] == str(len(payload))
        assert response.content == payload


def test_cut_off_upload_leaves_no_object(
    backend_client: TestClient, storage_backend: StorageEmulator
) -> None:
    boundary = "cut"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n'
    ).encode() + os.urandom(9 * 1024 * 1024)
    response = backend_client.post(
        "/opsml/files/upload",
        content=body,
        headers={
            "write_path": f"{ROOT}/cut.bin",
            "content-type": f"multipart/form-data; boundary={boundary}",
        },
    )
    assert response.status_code == 400
    assert _objects(storage_backend) == []


def test_presigned_urls_read_and_write_with_a_plain_client(backend_client: TestClient) -> None:
    backend_client.post(
        "/opsml/files/upload",
        headers={"write_path": f"{ROOT}/weights.bin"},
        files={"file": ("weights.bin", b"weights-v1")},
    )
    signed = backend_client.get("/opsml/files/presign", params={"path": f"{ROOT}/weights.bin"})
    assert signed.status_code == 200, signed.text
    url = signed.json()["url"]
    if url.startswith("http://testserver"):  # local storage: the server itself serves the URL
        assert backend_client.get(url.removeprefix("http://testserver")).content == b"weights-v1"
    else:
        assert httpx.get(url).content == b"weights-v1"

    put = backend_client.get(
        "/opsml/files/presign", params={"path": f"{ROOT}/upload.bin", "method": "PUT"}
    ).json()["url"]
    if put.startswith("http://testserver"):
        response = backend_client.put(put.removeprefix("http://testserver"), content=b"via-put")
    else:
        headers = (
            {"x-ms-blob-type": "BlockBlob"} if ".blob." in put or "devstoreaccount1" in put else {}
        )
        response = httpx.put(put, content=b"via-put", headers=headers)
    assert response.status_code in (200, 201), response.text
    got = backend_client.get("/opsml/files/download", params={"path": f"{ROOT}/upload.bin"})
    assert got.content == b"via-put"


def test_presign_refuses_paths_outside_the_root(backend_client: TestClient) -> None:
    response = backend_client.get("/opsml/files/presign", params={"path": "opsml-root:/../x"})
    assert response.status_code == 400


def test_a_delete_by_one_worker_is_seen_by_another(
    storage_backend: StorageEmulator, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two app instances stand for two gunicorn workers, each with its own filesystem object.
    for key, value in storage_backend.env.items():
        monkeypatch.setenv(key, value)
    settings = Settings(
        OPSML_TRACKING_URI=postgres_url, OPSML_STORAGE_URI=storage_backend.storage_uri
    )
    with (
        TestClient(create_app(settings, login=False)) as first,
        TestClient(create_app(settings, login=False)) as second,
    ):
        first.post(
            "/opsml/files/upload",
            headers={"write_path": f"{ROOT}/card.json"},
            files={"file": ("card.json", b"{}")},
        )
        assert second.get("/opsml/files/list", params={"path": ROOT}).json()["files"] == [
            f"{ROOT}/card.json"
        ]
        second.get("/opsml/files/list", params={"path": "opsml-root:/OPSML_MODEL_REGISTRY"})
        first.get("/opsml/files/delete", params={"path": ROOT})
        assert second.get("/opsml/files/list", params={"path": ROOT}).json() == {"files": []}
        assert second.get("/opsml/files/exists", params={"path": f"{ROOT}/card.json"}).json() == {
            "exists": False
        }


def test_put_urls_last_an_hour_at_most_on_every_backend(backend_client: TestClient) -> None:
    params = {"path": f"{ROOT}/upload.bin", "method": "PUT"}
    for expires in (MAX_PUT_EXPIRES_S + 1, 7 * 24 * 3600):
        response = backend_client.get("/opsml/files/presign", params={**params, "expires": expires})
        assert response.status_code == 400, response.text
        assert response.json() == {"detail": BAD_PUT_EXPIRY}
    ok = backend_client.get("/opsml/files/presign", params={**params, "expires": MAX_PUT_EXPIRES_S})
    assert ok.status_code == 200, ok.text
