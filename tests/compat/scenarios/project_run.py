"""A project run: ProjectCard + RunCard, metrics, a parameter and an artifact file.

``OpsmlProject(...).run()`` registers the ProjectCard and RunCard, ``log_metric`` sends
PUT metrics, ``log_artifact_from_file`` uploads under the run's ``artifacts/``; on exit the
RunCard is updated. Afterwards everything is read back from the server.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
from _common import Scenario, card_dir
from opsml import CardRegistry, DataCard, OpsmlProject, PandasData, ProjectInfo, __version__

LOSSES = [0.9, 0.55, 0.31, 0.125]
# Clients before 2.1.8 keep metrics inside the pickled RunCard and never PUT them to the
# server (their RunCard.log_metric has no registry call): the server-side metric checks are
# reported as a named limit of the client instead of being run.
SERVER_METRICS = tuple(int(p) for p in __version__.split(".")[:3]) >= (2, 1, 8)
LIMIT_NO_SERVER_METRICS = "metrics stay in the RunCard (no PUT metrics before 2.1.8)"


def body(s: Scenario) -> None:
    repository = "compat-projects"
    project_name = s.unique("project")
    info = ProjectInfo(name=project_name, repository=repository, contact="runs@example.com")
    project = OpsmlProject(info=info)
    project_id = project.project_id
    s.check(
        isinstance(project_id, int) and project_id >= 1,
        "project_id is a positive int",
        project_id=project_id,
    )

    workdir = Path(tempfile.mkdtemp(prefix="compat-run-"))
    artifact = workdir / "notes.txt"
    artifact_text = f"run notes for {project_name}\n" * 20
    artifact.write_text(artifact_text)

    with project.run(run_name="training") as run:
        run_uid = run.run_id
        for step, loss in enumerate(LOSSES, start=1):
            run.log_metric(key="loss", value=loss, step=step)
        run.log_metric(key="accuracy", value=0.875)
        run.log_parameter(key="learning_rate", value=0.01)
        run.log_parameter(key="optimizer", value="adam")
        run.log_artifact_from_file(name="notes", local_path=artifact)
        run.add_tag("purpose", "compat")
        frame = pd.DataFrame({"a": [1, 2, 3]})
        run.register_card(
            card=DataCard(
                interface=PandasData(data=frame),
                name=s.unique("run-data"),
                repository=repository,
                contact="runs@example.com",
            )
        )
    s.facts.update(run_uid=run_uid, project_id=project_id)

    if SERVER_METRICS:
        _server_metrics(s, run_uid)
    else:
        s.facts.setdefault("client_limits", []).append(LIMIT_NO_SERVER_METRICS)

    # RunCard read back through the client
    run_registry = CardRegistry("run")
    runcard = run_registry.load_card(uid=run_uid)
    if SERVER_METRICS:
        runcard.metrics = {}  # force the server round-trip rather than the pickled copy
        runcard.load_metrics()
    loss = runcard.get_metric("loss")
    s.equal(
        [(m.step, m.value) for m in loss],
        list(enumerate(LOSSES, start=1)),
        "RunCard.get_metric('loss') after load_metrics",
    )
    _read_back(s, run_registry, runcard, run_uid, project_name, repository, artifact, artifact_text)

    # The same project again: same id, and its runs are listed
    again = OpsmlProject(info=info)
    s.equal(again.project_id, project_id, "project_id is stable for the same project")
    with again.run() as second:
        second.log_metric(key="loss", value=0.05, step=1)
        second_uid = second.run_id
    runs = again.list_runs()
    s.equal(sorted(r["uid"] for r in runs), sorted([run_uid, second_uid]), "project.list_runs()")
    again.run_id = second_uid
    s.equal(again.get_metric("loss").value, 0.05, "OpsmlProject.get_metric on the second run")

    other = OpsmlProject(
        info=ProjectInfo(
            name=s.unique("other-project"), repository=repository, contact="runs@example.com"
        )
    )
    s.check(
        other.project_id != project_id,
        "a new project gets a new id",
        first=project_id,
        other=other.project_id,
    )


def _server_metrics(s: Scenario, run_uid: str) -> None:
    """Metrics through the protocol."""
    names = s.post("/metrics", {"run_uid": run_uid, "names_only": True})["metric"]
    s.equal(sorted(names), ["accuracy", "loss"], "metric names of the run")
    rows = s.post("/metrics", {"run_uid": run_uid, "name": ["loss"]})["metric"]
    s.equal(
        [(r["name"], r["step"]) for r in rows],
        [("loss", i) for i in range(1, 5)],
        "loss rows in logging order with their steps",
    )
    s.check(
        all(math.isclose(r["value"], v) for r, v in zip(rows, LOSSES, strict=True)),
        "loss values",
        rows=rows,
    )
    s.check(all(r["run_uid"] == run_uid for r in rows), "rows carry run_uid", rows=rows)
    none = s.post("/metrics", {"run_uid": "0" * 32})["metric"]
    s.check(none is None or none == [], "metrics of an unknown run are empty", got=none)


def _read_back(
    s: Scenario,
    run_registry: CardRegistry,
    runcard: Any,
    run_uid: str,
    project_name: str,
    repository: str,
    artifact: Path,
    artifact_text: str,
) -> None:
    """The RunCard's parameters, links and artifact, read back through the client."""
    s.equal(runcard.get_metric("accuracy").value, 0.875, "RunCard.get_metric('accuracy')")
    s.equal(runcard.get_parameter("learning_rate").value, 0.01, "parameter learning_rate")
    s.equal(runcard.get_parameter("optimizer").value, "adam", "parameter optimizer")
    s.equal(runcard.tags.get("purpose"), "compat", "run tag")
    s.equal(len(runcard.datacard_uids), 1, "the DataCard registered in the run is linked")

    record = run_registry.list_cards(uid=run_uid)[0]
    s.equal(record["project"], project_name, "run record's project")
    s.equal(record["repository"], repository, "run record's repository")
    s.check("notes" in (record.get("artifact_uris") or {}), "artifact_uris recorded", record=record)
    remote = record["artifact_uris"]["notes"]["remote_path"]
    run_dir = card_dir("OPSML_RUN_REGISTRY", repository, record["name"], record["version"])
    s.equal(remote, f"{run_dir}/artifacts/notes.txt", "artifact remote path")
    s.check(f"{run_dir}/artifacts/notes.txt" in s.files_list(run_dir), "artifact file listed")

    # The artifact comes back byte for byte
    artifact.unlink()
    runcard.load_artifacts(name="notes")
    s.equal(artifact.read_text(), artifact_text, "downloaded artifact content")


if __name__ == "__main__":
    Scenario("project_run").run(body)
