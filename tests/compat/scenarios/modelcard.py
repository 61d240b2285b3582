"""ModelCard life cycle with a scikit-learn model and sample data.

register (linked to a DataCard) -> load (predictions equal) -> model metadata route ->
update (tags, contact) -> delete (record and files gone).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from _common import Scenario, card_dir
from opsml import CardRegistry, DataCard, ModelCard, PandasData, SklearnModel
from sklearn.ensemble import RandomForestClassifier

TABLE = "OPSML_MODEL_REGISTRY"


def body(s: Scenario) -> None:
    rng = np.random.default_rng(11)
    features = pd.DataFrame(rng.normal(size=(120, 4)), columns=["f0", "f1", "f2", "f3"])
    target = (features["f0"] + features["f1"] * 0.5 > 0).astype(int)
    model = RandomForestClassifier(n_estimators=8, max_depth=4, random_state=0).fit(
        features, target
    )
    expected = model.predict_proba(features)

    repository = "compat-model"
    data_registry = CardRegistry("data")
    datacard = DataCard(
        interface=PandasData(data=features),
        name=s.unique("training-data"),
        repository=repository,
        contact="ml@example.com",
    )
    data_registry.register_card(datacard)

    registry = CardRegistry("model")
    name = s.unique("forest")
    card = ModelCard(
        interface=SklearnModel(model=model, sample_data=features.iloc[:10]),
        name=name,
        repository=repository,
        contact="ml@example.com",
        datacard_uid=datacard.uid,
        tags={"algo": "rf"},
    )
    registry.register_card(card, version_type="major")
    s.equal(card.version, "1.0.0", "first ModelCard version")
    s.facts.update(uid=card.uid, version=card.version, name=name)

    record = registry.list_cards(uid=card.uid)[0]
    for key, value in {
        "name": name,
        "repository": repository,
        "version": "1.0.0",
        "datacard_uid": datacard.uid,
        "model_type": "RandomForestClassifier",
        "sample_data_type": "pandas.core.frame.DataFrame",
        "tags": {"algo": "rf"},
    }.items():
        s.equal(record.get(key), value, f"model record[{key!r}]")

    base = card_dir(TABLE, repository, name, "1.0.0")
    files = sorted(path.rsplit("/", 1)[1] for path in s.files_list(base))
    s.equal(
        files,
        ["card.joblib", "model-metadata.json", "sample-model-data.joblib", "trained-model.joblib"],
        "files stored for the ModelCard",
    )

    loaded = registry.load_card(uid=card.uid)
    loaded.load_model()
    s.check(
        np.array_equal(loaded.interface.model.predict_proba(features), expected),
        "loaded model predicts exactly like the registered one",
    )
    # the client keeps only the first row of the sample data
    pd.testing.assert_frame_equal(loaded.interface.sample_data, features.iloc[:1])
    s.checks += 1
    s.equal(loaded.datacard_uid, datacard.uid, "loaded card keeps its datacard_uid")

    # The opsml-cli route: the stored model-metadata.json through models/metadata.
    metadata = s.post("/models/metadata", {"name": name, "repository": repository})
    s.equal(metadata.get("model_name"), name, "models/metadata model_name")
    s.equal(metadata.get("model_version"), "1.0.0", "models/metadata model_version")
    s.equal(metadata.get("model_type"), "RandomForestClassifier", "models/metadata model_type")

    # second version, minor bump; load by version range gets the newest
    second = ModelCard(
        interface=SklearnModel(model=model, sample_data=features.iloc[:10]),
        name=name,
        repository=repository,
        contact="ml@example.com",
        datacard_uid=datacard.uid,
    )
    registry.register_card(second)
    s.equal(second.version, "1.1.0", "second ModelCard version (minor bump)")
    newest = registry.load_card(name=name, repository=repository, version="^1")
    s.equal(newest.uid, second.uid, "load_card(version='^1') returns the newest 1.x")

    loaded.tags["algo"] = "random-forest"
    loaded.contact = "owner@example.com"
    registry.update_card(loaded)
    record = registry.list_cards(uid=card.uid)[0]
    s.equal(record["tags"], {"algo": "random-forest"}, "model tags after update")
    s.equal(record["contact"], "owner@example.com", "model contact after update")
    again = registry.load_card(uid=card.uid)
    again.load_model()
    s.check(
        np.array_equal(again.interface.model.predict_proba(features), expected),
        "model still predicts the same after update_card",
    )

    registry.delete_card(again)
    s.equal(registry.list_cards(uid=card.uid), [], "deleted ModelCard is gone from list_cards")
    s.equal(s.files_list(base), [], "deleted ModelCard's files are gone")
    versions = [r["version"] for r in registry.list_cards(name=name, repository=repository)]
    s.equal(versions, ["1.1.0"], "only the second version remains")


if __name__ == "__main__":
    Scenario("modelcard").run(body)
