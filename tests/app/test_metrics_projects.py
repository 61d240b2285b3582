"""Run metrics and project ids."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_metrics_round_trip_and_get_for_the_cli(client: TestClient, unique: str) -> None:
    run_uid = f"run-{unique}"
    assert client.post("/opsml/metrics", json={"run_uid": run_uid}).json() == {"metric": None}
    rows = [
        {"run_uid": run_uid, "name": "mae", "value": 1.5, "step": 1, "timestamp": 10},
        {"run_uid": run_uid, "name": "mae", "value": 1.25, "step": 2, "timestamp": 11},
        {"run_uid": run_uid, "name": "r2", "value": 0.9},
    ]
    assert client.put("/opsml/metrics", json={"metric": rows}).json() == {"complete": True}

    found = client.post("/opsml/metrics", json={"run_uid": run_uid, "name": ["mae"]}).json()[
        "metric"
    ]
    assert [(m["name"], m["value"], m["step"]) for m in found] == [
        ("mae", 1.5, 1),
        ("mae", 1.25, 2),
    ]
    assert found[0]["run_uid"] == run_uid and found[0]["date_ts"]
    names = client.post("/opsml/metrics", json={"run_uid": run_uid, "names_only": True}).json()
    assert names == {"metric": ["mae", "r2"]}
    via_get = client.get("/opsml/metrics", params={"run_uid": run_uid}).json()["metric"]
    assert len(via_get) == 3


def test_bad_metrics_are_422_and_nothing_is_written(client: TestClient, unique: str) -> None:
    run_uid = f"run-{unique}"
    bad = {
        "metric": [
            {"run_uid": run_uid, "name": "ok", "value": 1.0},
            {"run_uid": run_uid, "name": "bad", "value": "high"},
        ]
    }
    assert client.put("/opsml/metrics", json=bad).status_code == 422
    assert client.post("/opsml/metrics", json={"run_uid": run_uid}).json() == {"metric": None}


def test_project_ids_are_stable_and_new_ones_are_next(client: TestClient, unique: str) -> None:
    repo = f"repo-{unique}"

    def project_id(name: str) -> int:
        response = client.get(
            "/opsml/projects/id", params={"project_name": name, "repository": repo}
        )
        assert response.status_code == 200, response.text
        return int(response.json()["project_id"])

    first = project_id("proj-a")
    response = client.post(
        "/opsml/cards/create",
        json={
            "registry_type": "project",
            "card": {
                "uid": f"uid-{unique}",
                "name": "proj-a",
                "repository": repo,
                "version": "1.0.0",
                "project_id": first,
                "timestamp": 1,
            },
        },
    )
    assert response.status_code == 200, response.text
    assert project_id("proj-a") == first
    assert project_id("proj-b") == first + 1
    response = client.post(
        "/opsml/cards/create",
        json={
            "registry_type": "project",
            "card": {
                "uid": "u",
                "name": "other",
                "repository": repo,
                "version": "1.0.0",
                "project_id": first,
            },
        },
    )
    assert response.status_code == 409


def test_project_card_of_a_2_0_client_with_a_blank_repository(
    client: TestClient, unique: str
) -> None:
    # What an opsml 2.0-2.1 client sends for a new project (its ProjectRegistryRecord): the
    # ProjectCard's validator sets the repository to "" whatever the user gave.
    card = {
        "uid": f"uid-{unique}",
        "name": f"proj-{unique}",
        "repository": "",
        "project_id": 7000 + len(unique),
        "version": "1.0.0",
        "timestamp": 1796163141111173,
    }
    response = client.post("/opsml/cards/create", json={"registry_type": "project", "card": card})
    assert response.status_code == 200, response.text
    listed = client.post(
        "/opsml/cards/list", json={"registry_type": "project", "name": f"proj-{unique}"}
    ).json()["cards"]
    assert [(c["project_id"], c["repository"]) for c in listed] == [(card["project_id"], "")]


def test_two_new_projects_asked_for_before_either_is_created_get_two_ids(
    client: TestClient, unique: str
) -> None:
    # Two clients starting new projects at the same moment: both ask projects/id before either
    # registers its ProjectCard. Both used to get max+1, and the second create was a 409.
    def ask(name: str) -> int:
        params = {"project_name": name, "repository": f"repo-{unique}"}
        return int(client.get("/opsml/projects/id", params=params).json()["project_id"])

    first, second = ask(f"a-{unique}"), ask(f"b-{unique}")
    assert second != first
    for name, pid in [(f"a-{unique}", first), (f"b-{unique}", second)]:
        card = {
            "uid": f"{name}-uid",
            "name": name,
            "repository": f"repo-{unique}",
            "project_id": pid,
            "version": "1.0.0",
        }
        body = {"registry_type": "project", "card": card}
        created = client.post("/opsml/cards/create", json=body)
        assert created.status_code == 200, created.text
    assert (ask(f"a-{unique}"), ask(f"b-{unique}")) == (first, second)
