"""Seed for the opsml-cli tests: a ModelCard registered inside a project run with metrics.

Prints the uids and names the CLI commands are then pointed at (in the SUMMARY facts).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from _common import Scenario
from opsml import ModelCard, OpsmlProject, ProjectInfo, SklearnModel
from sklearn.linear_model import LogisticRegression

REPOSITORY = "compat-cli"


def body(s: Scenario) -> None:
    frame = pd.DataFrame(np.random.default_rng(2).normal(size=(20, 2)), columns=["x1", "x2"])
    model = LogisticRegression().fit(frame, (frame["x1"] > 0).astype(int))
    name = s.unique("cli-model")
    info = ProjectInfo(name=s.unique("cli-project"), repository=REPOSITORY, contact="c@x.com")
    with OpsmlProject(info=info).run(run_name="cli") as run:
        run.log_metric(key="mae", value=0.5, step=1)
        run.log_metric(key="mae", value=0.25, step=2)
        card = ModelCard(
            interface=SklearnModel(model=model, sample_data=frame.iloc[:5]),
            name=name,
            repository=REPOSITORY,
            contact="c@x.com",
        )
        run.register_card(card)
        run_uid = run.run_id
    s.equal(card.version, "1.0.0", "seeded model version")
    s.facts.update(name=name, repository=REPOSITORY, uid=card.uid, run_uid=run_uid)


if __name__ == "__main__":
    Scenario("cli_seed").run(body)
