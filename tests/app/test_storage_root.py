"""A local storage root that is missing, replaced, unmounted or read-only is never re-created
or written beside; requests say so (503) and readiness turns red."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.errors import ConfigError
from app.main import create_app
from app.settings import DEFAULT_STORAGE_URI, Settings
from app.storage.local_root import (
    ERR_ROOT_MISSING,
    ERR_ROOT_READ_ONLY,
    ERR_ROOT_REPLACED,
    LOCAL_MISSING,
)
from tests.conftest import ClientFactory
from tests.support.tmpfs import make_read_only, tmpfs, unmount

FILE = "opsml-root:/OPSML_DATA_REGISTRY/repo/name/v1.0.0/data.bin"


def _upload(client: TestClient, data: bytes = b"payload"):
    return client.post(
        "/opsml/files/upload", headers={"write_path": FILE}, files={"file": ("d", data)}
    )


def _assert_storage_refused(client: TestClient, message: str) -> None:
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["storage"] == message
    for response in (
        _upload(client),
        client.get("/opsml/files/list", params={"path": FILE}),
        client.get("/opsml/files/exists", params={"path": FILE}),
        client.get("/opsml/files/download", params={"path": FILE}),
        client.get("/opsml/files/delete", params={"path": FILE}),
    ):
        assert response.status_code == 503, (response.request.url, response.text)
        assert response.json() == {"detail": message}


def test_a_configured_root_that_does_not_exist_stops_start_up(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    missing = tmp_path / "volume" / "artifacts"
    with pytest.raises(ConfigError) as raised:
        create_app(make_settings(OPSML_STORAGE_URI=str(missing)), login=False)
    assert raised.value.message == LOCAL_MISSING.format(path=missing)
    assert not (tmp_path / "volume").exists()


def test_only_the_embedded_default_creates_its_root(
    make_settings: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = make_settings()
    defaults = Settings(OPSML_TRACKING_URI=settings.tracking_uri.get_secret_value())
    assert defaults.storage_uri == DEFAULT_STORAGE_URI
    with TestClient(create_app(defaults, login=False)) as client:
        assert (tmp_path / DEFAULT_STORAGE_URI).is_dir()
        assert _upload(client).status_code == 200
        assert client.get("/readyz").json()["checks"]["storage"] == "ok"


def test_a_deleted_root_is_not_re_created(make_client: ClientFactory, tmp_path: Path) -> None:
    client = make_client()
    root = tmp_path / "artifacts"
    assert _upload(client).status_code == 200
    shutil.rmtree(root)
    _assert_storage_refused(client, ERR_ROOT_MISSING)
    assert not root.exists()


def test_an_unmounted_volume_is_not_written_beside(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    volume = tmp_path / "volume"
    with tmpfs(volume, size_kib=4096):
        client = make_client(OPSML_STORAGE_URI=str(volume))
        assert _upload(client).status_code == 200
        assert client.get("/readyz").status_code == 200
        unmount(volume)  # the mount point stays behind, on the disk below
        _assert_storage_refused(client, ERR_ROOT_REPLACED)
        assert list(volume.iterdir()) == []


def test_read_only_storage_turns_readiness_red(make_client: ClientFactory, tmp_path: Path) -> None:
    volume = tmp_path / "volume"
    with tmpfs(volume, size_kib=4096):
        client = make_client(OPSML_STORAGE_URI=str(volume))
        assert _upload(client).status_code == 200
        make_read_only(volume)
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["storage"] == ERR_ROOT_READ_ONLY
        # Reads still work; a write says what is wrong.
        assert client.get("/opsml/files/download", params={"path": FILE}).content == b"payload"
        refused = _upload(client, b"other")
        assert refused.status_code == 503, refused.text
        assert "read-only" in refused.json()["detail"]
