"""The mixed fleet: cards registered by one client release, listed and loaded by every other.

`write(s)` (a part of flow.py) registers a DataCard and a ModelCard named after the client's
release and records in `$OPSML_FLEET_DIR/<release>.json` what a reader must get back. Run as a
script, it reads every record in that folder through this client and checks each card.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import opsml
import pandas as pd
from _common import Scenario
from opsml import CardRegistry, DataCard, ModelCard, PandasData, SklearnModel
from sklearn.linear_model import LogisticRegression

REPOSITORY = "compat-fleet"


def _frame() -> pd.DataFrame:
    return pd.DataFrame(np.random.default_rng(5).normal(size=(30, 3)), columns=["a", "b", "c"])


def _name(stem: str) -> str:
    return f"{stem}-{opsml.__version__.replace('.', '-')}"


def write(s: Scenario) -> None:
    frame = _frame()
    datacard = DataCard(
        interface=PandasData(data=frame),
        name=_name("fleet-data"),
        repository=REPOSITORY,
        contact="fleet@example.com",
    )
    CardRegistry("data").register_card(datacard)
    model = LogisticRegression().fit(frame, (frame["a"] > 0).astype(int))
    modelcard = ModelCard(
        interface=SklearnModel(model=model, sample_data=frame.iloc[:5]),
        name=_name("fleet-model"),
        repository=REPOSITORY,
        contact="fleet@example.com",
        datacard_uid=datacard.uid,
    )
    CardRegistry("model").register_card(modelcard)
    record = {
        "writer": opsml.__version__,
        "data": {"uid": datacard.uid, "name": datacard.name, "version": datacard.version},
        "model": {"uid": modelcard.uid, "name": modelcard.name, "version": modelcard.version},
        "predictions": model.predict_proba(frame).tolist(),
    }
    folder = Path(os.environ["OPSML_FLEET_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{opsml.__version__}.json").write_text(json.dumps(record))
    s.check(True, "fleet cards registered")


def read(s: Scenario) -> None:
    frame = _frame()
    data_registry, model_registry = CardRegistry("data"), CardRegistry("model")
    writers = []
    for path in sorted(Path(os.environ["OPSML_FLEET_DIR"]).glob("*.json")):
        record = json.loads(path.read_text())
        writer = record["writer"]
        writers.append(writer)
        data, model = record["data"], record["model"]
        listed = data_registry.list_cards(name=data["name"], repository=REPOSITORY)
        s.equal([r["uid"] for r in listed], [data["uid"]], f"list DataCard written by {writer}")
        datacard = data_registry.load_card(uid=data["uid"])
        s.equal(datacard.version, data["version"], f"DataCard version written by {writer}")
        datacard.load_data()
        pd.testing.assert_frame_equal(datacard.interface.data, frame)
        modelcard = model_registry.load_card(name=model["name"], repository=REPOSITORY)
        s.equal(modelcard.uid, model["uid"], f"ModelCard by name written by {writer}")
        s.equal(modelcard.datacard_uid, data["uid"], f"ModelCard's datacard_uid by {writer}")
        modelcard.load_model()
        got = modelcard.interface.model.predict_proba(frame)
        s.check(np.allclose(got, record["predictions"]), f"predictions of {writer}'s model")
    s.facts["writers"] = writers


if __name__ == "__main__":
    Scenario("fleet").run(read)
