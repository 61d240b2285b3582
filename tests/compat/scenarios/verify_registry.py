"""Drop-in, step 2: read everything ``seed_registry.py`` wrote, through the server under test.

Then write to the adopted registry: a new version continues the seeded sequence and a new
run gets a fresh project id.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
from _common import Scenario
from opsml import CardRegistry, DataCard, OpsmlProject, PandasData, ProjectInfo


def body(s: Scenario) -> None:
    m = json.loads(Path(os.environ["OPSML_COMPAT_MANIFEST"]).read_text())
    repository, data_name = m["repository"], m["data_name"]
    frame = pd.read_json(io.StringIO(m["data_json"]), orient="split")
    data_registry = CardRegistry("data")

    listed = {
        r["version"]: r["uid"]
        for r in data_registry.list_cards(name=data_name, repository=repository)
    }
    s.equal(listed, m["data_versions"], "every seeded DataCard version is listed with its uid")
    ordered = [
        r["version"] for r in data_registry.list_cards(name=data_name, repository=repository)
    ]
    s.equal(
        ordered, ["3.0.0-rc.1", "2.0.0", "1.1.1", "1.1.0", "1.0.0"], "semver order of adopted rows"
    )
    s.equal(
        [
            r["version"]
            for r in data_registry.list_cards(name=data_name, repository=repository, version="^1")
        ],
        ["1.1.1"],
        "^1 on adopted rows",
    )
    without_rc = data_registry.list_cards(
        name=data_name, repository=repository, ignore_release_candidates=True
    )
    s.equal(
        without_rc[0]["version"],
        "2.0.0",
        "ignore_release_candidates on adopted rows",
    )
    record = data_registry.list_cards(uid=m["data_versions"]["1.1.0"])[0]
    s.equal(record["tags"], {"kind": "seed"}, "adopted JSON tags")
    s.equal(record["contact"], "seed@example.com", "adopted contact")

    for version, uid in m["data_versions"].items():
        card = data_registry.load_card(uid=uid)
        card.load_data()
        pd.testing.assert_frame_equal(card.interface.data, frame, check_exact=False, rtol=1e-12)
        s.checks += 1
        s.equal(card.version, version, f"loaded DataCard {uid} version")

    model_registry = CardRegistry("model")
    model_card = model_registry.load_card(uid=m["model_uid"])
    model_card.load_model()
    s.check(
        np.allclose(
            model_card.interface.model.predict_proba(frame),
            np.array(m["predictions"]),
            rtol=0,
            atol=1e-12,
        ),
        "adopted model predicts as when it was registered",
    )
    s.equal(model_card.datacard_uid, m["data_versions"]["2.0.0"], "adopted model's datacard_uid")

    run_registry = CardRegistry("run")
    runcard = run_registry.load_card(uid=m["run_uid"])
    runcard.metrics = {}
    runcard.load_metrics()
    s.equal([metric.value for metric in runcard.get_metric("loss")], m["loss"], "adopted metrics")
    s.equal(runcard.get_parameter("alpha").value, 0.5, "adopted parameter")
    Path(m["artifact_path"]).unlink(missing_ok=True)
    runcard.load_artifacts(name="report")
    s.equal(Path(m["artifact_path"]).read_text(), m["artifact_text"], "adopted artifact content")

    project = OpsmlProject(
        info=ProjectInfo(name=m["project_name"], repository=repository, contact="seed@example.com")
    )
    s.equal(project.project_id, m["project_id"], "adopted project keeps its id")
    s.equal([r["uid"] for r in project.list_runs()], [m["run_uid"]], "adopted project's runs")

    # Writes on the adopted registry continue where the reference stopped.
    card = DataCard(
        interface=PandasData(data=frame),
        name=data_name,
        repository=repository,
        contact="seed@example.com",
    )
    data_registry.register_card(card, version_type="minor")
    s.equal(card.version, "3.0.0", "minor after the seeded 3.0.0-rc.1 yields its final version")
    new_project = OpsmlProject(
        info=ProjectInfo(name=s.unique("after"), repository=repository, contact="seed@example.com")
    )
    s.check(
        new_project.project_id > m["project_id"],
        "new project id after the adopted ones",
        new=new_project.project_id,
        seeded=m["project_id"],
    )
    s.facts.update(verified_cards=len(m["data_versions"]) + 1)


if __name__ == "__main__":
    Scenario("verify_registry").run(body)
