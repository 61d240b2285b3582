"""The /opsml/models/* routes and the metric reads of opsml-cli, as the reference 2.2.4 answers
them (issue 15); each expected answer below was observed on the reference server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from app.services import models
from tests.app.helpers import card_record

TABLE = "OPSML_MODEL_REGISTRY"


def _upload(client: TestClient, path: str, data: bytes) -> None:
    response = client.post(
        "/opsml/files/upload", headers={"write_path": path}, files={"file": ("f", data)}
    )
    assert response.status_code == 200, response.text


def _model(
    client: TestClient, name: str, repository: str, version: str, **extra: Any
) -> dict[str, Any]:
    """A ModelCard row and the files the client stores beside it."""
    record = card_record(name, repository, version, **extra)
    response = client.post("/opsml/cards/create", json={"card": record, "registry_type": "model"})
    assert response.status_code == 200, response.text
    folder = f"opsml-root:/{TABLE}/{repository}/{name}/v{version}"
    metadata = {
        "model_name": name,
        "model_repository": repository,
        "model_version": version,
        "model_uri": f"{folder}/trained-model.joblib",
        "onnx_uri": None,
    }
    _upload(client, f"{folder}/model-metadata.json", json.dumps(metadata).encode())
    _upload(client, f"{folder}/trained-model.joblib", b"model-bytes-" + version.encode())
    return record


def _log(client: TestClient, run_uid: str, *values: tuple[str, float]) -> None:
    rows = [
        {"run_uid": run_uid, "name": n, "value": v, "step": i} for i, (n, v) in enumerate(values)
    ]
    assert client.put("/opsml/metrics", json={"metric": rows}).status_code == 200


def test_metadata_by_name_alone_as_opsml_cli_asks(client: TestClient, unique: str) -> None:
    name, repo = f"clf-{unique}", f"repo-{unique}"
    _model(client, name, repo, "1.0.0")
    _model(client, name, repo, "1.1.0")
    # `opsml-cli download-model-metadata --name X` and `download-model --name X --version V`.
    latest = client.post("/opsml/models/metadata", json={"name": name})
    assert latest.status_code == 200, latest.text
    assert latest.json()["model_version"] == "1.1.0"
    pinned = client.post("/opsml/models/metadata", json={"name": name, "version": "1.0.0"})
    assert pinned.json()["model_version"] == "1.0.0"
    none = client.post("/opsml/models/metadata", json={"repository": repo})
    assert none.status_code == 400 and none.json() == {"detail": models.ERR_NO_SELECTOR}
    missing = client.post("/opsml/models/metadata", json={"name": f"nope-{unique}"})
    assert missing.status_code == 404 and missing.json() == {"detail": models.ERR_NO_MODEL}


def test_get_metrics_follows_a_model_card_to_its_run(client: TestClient, unique: str) -> None:
    run_uid = f"run-{unique}"
    card = _model(client, f"m-{unique}", f"repo-{unique}", "1.0.0", runcard_uid=run_uid)
    _log(client, run_uid, ("mae", 0.5), ("r2", 0.9))
    # `opsml-cli get-model-metrics --uid <ModelCard uid>`: its help says "Card uid".
    via_card = client.get("/opsml/metrics", params={"run_uid": card["uid"]}).json()["metric"]
    assert [(m["name"], m["value"]) for m in via_card] == [("mae", 0.5), ("r2", 0.9)]
    via_run = client.get("/opsml/metrics", params={"run_uid": run_uid}).json()["metric"]
    assert via_run == via_card


def test_no_metrics_is_an_empty_list_for_the_cli(client: TestClient, unique: str) -> None:
    lone = _model(client, f"lone-{unique}", f"repo-{unique}", "1.0.0")
    idle = _model(client, f"idle-{unique}", f"repo-{unique}", "1.0.0", runcard_uid="no-rows")
    for uid in [lone["uid"], idle["uid"], f"unknown-{unique}"]:
        got = client.get("/opsml/metrics", params={"run_uid": uid})
        assert got.status_code == 200 and got.json() == {"metric": []}, uid
    names = client.get("/opsml/metrics", params={"run_uid": lone["uid"], "names_only": True})
    assert names.json() == {"metric": []}
    # The Python client's route keeps the reference's null: RunCard.get_metric relies on it.
    assert client.post("/opsml/metrics", json={"run_uid": lone["uid"]}).json() == {"metric": None}


def test_model_metrics_of_older_clients(client: TestClient, unique: str) -> None:
    run_uid, name, repo = f"run-{unique}", f"m-{unique}", f"repo-{unique}"
    card = _model(client, name, repo, "1.0.0", runcard_uid=run_uid)
    _log(client, run_uid, ("mae", 0.5), ("mae", 0.25), ("r2", 0.9))
    got = client.post("/opsml/models/metrics", json={"uid": card["uid"]})
    assert got.status_code == 200, got.text
    assert got.json() == {
        "metrics": {
            "mae": [
                {"name": "mae", "value": 0.5, "step": 0, "timestamp": None},
                {"name": "mae", "value": 0.25, "step": 1, "timestamp": None},
            ],
            "r2": [{"name": "r2", "value": 0.9, "step": 2, "timestamp": None}],
        }
    }
    by_name = client.post("/opsml/models/metrics", json={"name": name, "version": "1.0.0"})
    assert by_name.json() == got.json()
    _model(client, name, repo, "1.1.0", runcard_uid=run_uid)
    ambiguous = client.post("/opsml/models/metrics", json={"name": name})
    assert ambiguous.status_code == 400
    assert ambiguous.json() == {"detail": models.ERR_MANY_MODELS}
    no_run = _model(client, f"norun-{unique}", repo, "1.0.0")
    refused = client.post("/opsml/models/metrics", json={"uid": no_run["uid"]})
    assert refused.status_code == 400
    expected = models.ERR_NO_RUN.format(name=f"norun-{unique}", version="1.0.0")
    assert refused.json() == {"detail": expected}


def test_compare_metrics_battles_each_champion(client: TestClient, unique: str) -> None:
    repo = f"repo-{unique}"
    challenger = _model(client, f"new-{unique}", repo, "1.0.0", runcard_uid=f"r1-{unique}")
    champion = _model(client, f"old-{unique}", repo, "2.0.0", runcard_uid=f"r2-{unique}")
    _log(client, f"r1-{unique}", ("mae", 0.2), ("mae", 9.0), ("r2", 0.7))
    _log(client, f"r2-{unique}", ("mae", 0.3), ("r2", 0.8))
    body = {
        "metric_name": ["mae", "r2"],
        "lower_is_better": [True, False],
        "challenger_uid": challenger["uid"],
        "champion_uid": [champion["uid"]],
    }
    got = client.post("/opsml/models/compare_metrics", json=body)
    assert got.status_code == 200, got.text
    report = got.json()
    assert (report["challenger_name"], report["challenger_version"]) == (f"new-{unique}", "1.0.0")
    mae, r2 = report["report"]["mae"][0], report["report"]["r2"][0]
    assert (mae["champion_name"], mae["champion_version"]) == (f"old-{unique}", "2.0.0")
    # The first value each run logged under the name, as the reference's RunCard.get_metric.
    assert mae["challenger_metric"]["value"] == 0.2 and mae["champion_metric"]["value"] == 0.3
    assert mae["challenger_win"] is True and r2["challenger_win"] is False
    one_flag = client.post("/opsml/models/compare_metrics", json={**body, "lower_is_better": True})
    assert one_flag.json()["report"]["r2"][0]["challenger_win"] is True
    bad = client.post(
        "/opsml/models/compare_metrics", json={**body, "lower_is_better": [True, True, False]}
    )
    assert bad.status_code == 400
    assert bad.json() == {"detail": models.ERR_LOWER_IS_BETTER.format(count=2, given=3)}
    f1_only = {**body, "metric_name": ["f1"], "lower_is_better": True}
    unknown = client.post("/opsml/models/compare_metrics", json=f1_only)
    assert unknown.status_code == 404
    assert unknown.json() == {
        "detail": models.ERR_NO_METRIC.format(run_uid=f"r1-{unique}", metric="f1")
    }


def test_register_copies_the_model_for_serving(
    client: TestClient, unique: str, tmp_path: Path
) -> None:
    name, repo = f"srv-{unique}", f"repo-{unique}"
    _model(client, name, repo, "1.1.0")
    _model(client, name, repo, "1.2.0")
    body = {"name": name, "repository": repo, "version": "1", "onnx": False}
    got = client.post("/opsml/models/register", json=body)
    assert got.status_code == 200, got.text
    folder = f"opsml-root:/{models.REGISTRY_DIR}/{repo}/{name}/v1"
    assert got.json().endswith(f"/{models.REGISTRY_DIR}/{repo}/{name}/v1")
    files = client.get("/opsml/files/list", params={"path": folder}).json()["files"]
    assert files == [f"{folder}/{models.MODEL_SETTINGS}", f"{folder}/trained-model.joblib"]
    model = client.get("/opsml/files/download", params={"path": f"{folder}/trained-model.joblib"})
    assert model.content == b"model-bytes-1.2.0"  # the highest 1.x version
    settings = client.get(
        "/opsml/files/download", params={"path": f"{folder}/{models.MODEL_SETTINGS}"}
    ).json()
    assert settings["name"] == name.replace("-", "_")
    assert settings["parameters"]["uri"] == "./trained-model.joblib"
    assert settings["parameters"]["extra"]["model_version"] == "1.2.0"
    onnx = client.post("/opsml/models/register", json={**body, "onnx": True})
    assert onnx.status_code == 404
    assert onnx.json() == {"detail": models.ERR_NO_ONNX.format(name=name, version="1.2.0")}
    bad = client.post("/opsml/models/register", json={**body, "version": "1.x"})
    assert bad.status_code == 422


def test_presigned_is_the_same_route_as_presign(client: TestClient, unique: str) -> None:
    path = f"opsml-root:/{TABLE}/repo-{unique}/m/v1.0.0/model.bin"
    _upload(client, path, b"weights")
    # opsml-cli 0.7's download-model asks for /files/presigned and reads `url`.
    url = client.get("/opsml/files/presigned", params={"path": path, "method": "GET"}).json()["url"]
    assert client.get(url).content == b"weights"
