"""The client session recorded in docs/reference-2.2.4.md (runs in the client venv).

Names are fixed (not unique): it is meant for a fresh reference database.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pandas as pd
from opsml import (
    CardRegistry,
    DataCard,
    ModelCard,
    OpsmlProject,
    PandasData,
    ProjectInfo,
    SklearnModel,
)
from sklearn.linear_model import LinearRegression

repo = "compat-repo"
df = pd.DataFrame({"x1": np.arange(10.0), "x2": np.arange(10.0) * 2, "y": np.arange(10.0) * 3})
data_reg, model_reg = CardRegistry("data"), CardRegistry("model")

card = DataCard(
    interface=PandasData(data=df),
    name="compat_data",
    repository=repo,
    contact="a@b.c",
    tags={"k": "v"},
)
data_reg.register_card(card)
loaded = data_reg.load_card(uid=card.uid)
loaded.load_data()
assert loaded.interface.data.equals(df)

features = df[["x1", "x2"]]
model = LinearRegression().fit(features, df["y"])
model_card = ModelCard(
    interface=SklearnModel(model=model, sample_data=features),
    name="compat_model",
    repository=repo,
    contact="a@b.c",
    datacard_uid=card.uid,
)
model_reg.register_card(model_card)
loaded_model = model_reg.load_card(uid=model_card.uid)
loaded_model.load_model()
model_reg.list_cards(name="compat_model", repository=repo)

project = OpsmlProject(info=ProjectInfo(name="compat_project", repository=repo, contact="a@b.c"))
with project.run() as run:
    run.log_metric(key="mae", value=1.5, step=1)
    run.log_metric(key="mae", value=1.25, step=2)
    run.log_parameter(key="lr", value=0.1)
    notes = os.path.join(tempfile.mkdtemp(), "notes.txt")
    with open(notes, "w") as handle:
        handle.write("hello")
    run.log_artifact_from_file(name="notes", local_path=notes)
    run.register_card(
        card=DataCard(
            interface=PandasData(data=df), name="run_data", repository=repo, contact="a@b.c"
        )
    )
    run_uid = run.run_id
runcard = CardRegistry("run").load_card(uid=run_uid)
runcard.get_metric("mae")

loaded.tags["k"] = "v2"
loaded.contact = "new@b.c"
data_reg.update_card(loaded)

for version_type, version in [
    ("patch", None),
    ("minor", None),
    ("major", None),
    ("pre", "3.0.0"),
    ("minor", "1.3.0"),
]:
    extra = {"version": version} if version else {}
    data_reg.register_card(
        DataCard(
            interface=PandasData(data=df),
            name="compat_data",
            repository=repo,
            contact="a@b.c",
            **extra,
        ),
        version_type=version_type,
    )
for version in ["^1", "~1.1", "1.*", "3.0.0-rc.1", None]:
    data_reg.list_cards(name="compat_data", repository=repo, version=version)
data_reg.list_cards(name="compat_data", repository=repo, ignore_release_candidates=True)
data_reg.delete_card(loaded)
print("RUN_UID", run_uid)
