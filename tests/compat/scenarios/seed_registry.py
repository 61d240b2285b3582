"""Drop-in, step 1: fill a registry (normally the reference server) and write a manifest.

The manifest (path in ``OPSML_COMPAT_MANIFEST``) records what was registered and what a
later reader must get back: uids, versions, a digest of the data, model predictions,
metric values and artifact contents. ``verify_registry.py`` checks it through another server.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from _common import Scenario
from opsml import (
    CardRegistry,
    DataCard,
    ModelCard,
    OpsmlProject,
    PandasData,
    ProjectInfo,
    SklearnModel,
)
from sklearn.linear_model import LogisticRegression


def body(s: Scenario) -> None:
    manifest_path = Path(os.environ["OPSML_COMPAT_MANIFEST"])
    repository = "drop-in"
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(40, 3)), columns=["a", "b", "c"])
    target = (frame["a"] > 0).astype(int)
    data_name, model_name = s.unique("table"), s.unique("classifier")

    data_registry = CardRegistry("data")
    data_versions = {}
    for version_type in ["minor", "minor", "patch", "major"]:
        card = DataCard(
            interface=PandasData(data=frame),
            name=data_name,
            repository=repository,
            contact="seed@example.com",
            tags={"kind": "seed"},
        )
        data_registry.register_card(card, version_type=version_type)
        data_versions[card.version] = card.uid
    pre = DataCard(
        interface=PandasData(data=frame),
        name=data_name,
        repository=repository,
        contact="seed@example.com",
        version="3.0.0",
    )
    data_registry.register_card(pre, version_type="pre")
    data_versions[pre.version] = pre.uid
    s.equal(
        sorted(data_versions), ["1.0.0", "1.1.0", "1.1.1", "2.0.0", "3.0.0-rc.1"], "seeded versions"
    )

    model = LogisticRegression().fit(frame, target)
    model_card = ModelCard(
        interface=SklearnModel(model=model, sample_data=frame.iloc[:5]),
        name=model_name,
        repository=repository,
        contact="seed@example.com",
        datacard_uid=data_versions["2.0.0"],
    )
    CardRegistry("model").register_card(model_card)

    project_name = s.unique("project")
    project = OpsmlProject(
        info=ProjectInfo(name=project_name, repository=repository, contact="seed@example.com")
    )
    artifact = Path(tempfile.mkdtemp(prefix="seed-")) / "report.txt"
    artifact.write_text("seeded artifact\n" * 50)
    with project.run() as run:
        for step, value in enumerate([3.0, 2.0, 1.5], start=1):
            run.log_metric(key="loss", value=value, step=step)
        run.log_parameter(key="alpha", value=0.5)
        run.log_artifact_from_file(name="report", local_path=artifact)
        run_uid = run.run_id

    manifest = {
        "repository": repository,
        "data_name": data_name,
        "data_versions": data_versions,
        "data_json": frame.to_json(orient="split", double_precision=15),
        "model_name": model_name,
        "model_uid": model_card.uid,
        "model_version": model_card.version,
        "predictions": model.predict_proba(frame).tolist(),
        "project_name": project_name,
        "project_id": project.project_id,
        "run_uid": run_uid,
        "loss": [3.0, 2.0, 1.5],
        "artifact_path": str(artifact),
        "artifact_text": artifact.read_text(),
    }
    manifest_path.write_text(json.dumps(manifest))
    s.facts.update(cards=len(data_versions) + 1, run_uid=run_uid)


if __name__ == "__main__":
    Scenario("seed_registry").run(body)
