"""`files/delete` removes a card version's folder or files in it, and refuses anything wider."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.db.tables import Base
from app.storage.delete_scope import (
    ERR_DELETE_SCOPE,
    ERR_DELETE_TABLE,
    ERR_DELETE_VERSION,
    REGISTRY_FOLDERS,
)

VERSION = "opsml-root:/OPSML_DATA_REGISTRY/repo/name/v1.0.0"
KEEP = "opsml-root:/OPSML_MODEL_REGISTRY/other/model/v2.0.0/model.bin"


def _upload(client: TestClient, write_path: str) -> None:
    response = client.post(
        "/opsml/files/upload", headers={"write_path": write_path}, files={"file": ("f", b"x")}
    )
    assert response.status_code == 200, response.text


def _exists(client: TestClient, path: str) -> bool:
    response = client.get("/opsml/files/exists", params={"path": path})
    assert response.status_code == 200, response.text
    exists: bool = response.json()["exists"]
    return exists


WIDE = [
    # The storage root, however spelled.
    *(
        ("opsml-root:" + tail, ERR_DELETE_SCOPE)
        for tail in ("", "/", "/.", "//", "/./", "/./.", "///.//", "/.//./")
    ),
    # Every registry's folder, a repository, a card's name (all its versions).
    *((f"opsml-root:/{table}", ERR_DELETE_SCOPE) for table in sorted(REGISTRY_FOLDERS)),
    *((f"opsml-root:/{table}/", ERR_DELETE_SCOPE) for table in sorted(REGISTRY_FOLDERS)),
    *((f"opsml-root://{table}/./", ERR_DELETE_SCOPE) for table in sorted(REGISTRY_FOLDERS)),
    ("opsml-root:/OPSML_MODEL_REGISTRY/other", ERR_DELETE_SCOPE),
    ("opsml-root:/OPSML_MODEL_REGISTRY/other/", ERR_DELETE_SCOPE),
    ("opsml-root:/OPSML_MODEL_REGISTRY//other//model//", ERR_DELETE_SCOPE),
    ("opsml-root:/OPSML_MODEL_REGISTRY/other/model/.", ERR_DELETE_SCOPE),
    ("opsml-root:/OPSML_MODEL_REGISTRY/./other/./model", ERR_DELETE_SCOPE),
    # Deep enough, but not a registry's layout.
    ("opsml-root:/opsml_model_registry/other/model/v2.0.0", ERR_DELETE_TABLE),
    ("opsml-root:/Opsml_Model_Registry/other/model/v2.0.0", ERR_DELETE_TABLE),
    ("opsml-root:/OPSML_MODEL_REGISTRY /other/model/v2.0.0", ERR_DELETE_TABLE),
    ("opsml-root:/elsewhere/a/b/v1.0.0", ERR_DELETE_TABLE),
    ("opsml-root:/%2F/OPSML_MODEL_REGISTRY/other/model", ERR_DELETE_TABLE),
    ("opsml-root:/OPSML_MODEL_REGISTRY/other/model/latest", ERR_DELETE_VERSION),
    ("opsml-root:/OPSML_MODEL_REGISTRY/other/model/v", ERR_DELETE_VERSION),
    ("opsml-root:/OPSML_MODEL_REGISTRY/other/model/v..", ERR_DELETE_VERSION),
    ("opsml-root:/OPSML_MODEL_REGISTRY/other/model/2.0.0", ERR_DELETE_VERSION),
]


@pytest.mark.parametrize(("path", "error"), WIDE)
def test_wide_deletes_are_refused_and_delete_nothing(
    client: TestClient, path: str, error: str
) -> None:
    _upload(client, KEEP)
    response = client.get("/opsml/files/delete", params={"path": path})
    assert response.status_code == 400, response.text
    assert response.json()["detail"].startswith(error.split("{path}")[0])
    assert _exists(client, KEEP)
    assert client.get("/readyz").status_code == 200


@pytest.mark.parametrize(
    "raw_query",
    [
        "opsml-root:/",
        "opsml-root%3A%2F",
        "opsml-root%3a%2f%2e",
        "opsml-root:%2F%2E%2F",
        "opsml-root:/OPSML_MODEL_REGISTRY%2F",
        "opsml-root:/OPSML_MODEL_REGISTRY%2Fother%2Fmodel%2F%2E",
    ],
)
def test_url_encoded_wide_deletes_are_refused(client: TestClient, raw_query: str) -> None:
    _upload(client, KEEP)
    response = client.get(f"/opsml/files/delete?path={raw_query}")
    assert response.status_code == 400, response.text
    assert _exists(client, KEEP)


@pytest.mark.parametrize(
    "spelling",
    [
        VERSION,
        f"{VERSION}/",
        f"{VERSION}/.",
        "opsml-root://OPSML_DATA_REGISTRY//repo/./name/v1.0.0//",
    ],
)
def test_a_card_version_folder_is_deleted_whatever_the_spelling(
    client: TestClient, spelling: str
) -> None:
    _upload(client, f"{VERSION}/card.json")
    _upload(client, f"{VERSION}/data/blob.bin")
    _upload(client, KEEP)
    response = client.get("/opsml/files/delete", params={"path": spelling})
    assert response.status_code == 200, response.text
    assert response.json() == {"deleted": True}
    assert not _exists(client, f"{VERSION}/card.json")
    assert not _exists(client, f"{VERSION}/data/blob.bin")
    assert _exists(client, KEEP)


@pytest.mark.parametrize(
    "version_folder",
    ["v1.0.0", "v1.0.0-rc.1", "v1.0.0+build.1", "v1.0.0-rc.1+build.1", "v2.1", "v10"],
)
def test_every_registry_and_version_form_the_clients_write_is_deletable(
    client: TestClient, tmp_path: Path, version_folder: str
) -> None:
    for table in sorted(REGISTRY_FOLDERS):
        folder = f"opsml-root:/{table}/my.repo/name.with.dots/{version_folder}"
        _upload(client, f"{folder}/artifacts/file.txt")
        _upload(client, f"{folder}/card.json")
        one_file = client.get("/opsml/files/delete", params={"path": f"{folder}/card.json"})
        assert one_file.status_code == 200, one_file.text
        assert not _exists(client, f"{folder}/card.json")
        assert _exists(client, f"{folder}/artifacts/file.txt")
        whole = client.get("/opsml/files/delete", params={"path": folder})
        assert whole.status_code == 200, whole.text
        assert not _exists(client, f"{folder}/artifacts/file.txt")
    assert (tmp_path / "artifacts").is_dir()


def test_registry_folders_are_the_registry_tables() -> None:
    tables = {name for name in Base.metadata.tables if name.endswith("_REGISTRY")}
    assert tables == REGISTRY_FOLDERS
