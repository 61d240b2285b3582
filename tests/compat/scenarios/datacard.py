"""DataCard life cycle: register -> load (data equal) -> update (tags, contact) -> delete.

Covers a pandas DataFrame and a numpy array, the record the server keeps, and the files
it stores under ``OPSML_DATA_REGISTRY/<repository>/<name>/v<version>/``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from _common import Scenario, card_dir
from opsml import CardRegistry, DataCard, NumpyData, PandasData

TABLE = "OPSML_DATA_REGISTRY"


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "num": rng.normal(size=50),
            "count": np.arange(50, dtype=np.int64),
            "label": [f"row_{i}" for i in range(50)],
        }
    )


def body(s: Scenario) -> None:
    registry = CardRegistry("data")
    repository = "compat-data"
    name = s.unique("frame_card")  # underscore on purpose: the client turns it into "-"
    frame = _frame()

    card = DataCard(
        interface=PandasData(data=frame),
        name=name,
        repository=repository,
        contact="first@example.com",
        tags={"stage": "dev"},
    )
    registry.register_card(card)
    clean = name.replace("_", "-")
    s.equal(card.version, "1.0.0", "first registration gets version 1.0.0")
    s.check(card.uid, "register_card set a uid")
    s.facts.update(uid=card.uid, version=card.version, name=clean)

    records = registry.list_cards(uid=card.uid)
    s.equal(len(records), 1, "list_cards(uid) finds exactly the new card")
    record = records[0]
    for key, expected in {
        "uid": card.uid,
        "name": clean,
        "repository": repository,
        "version": "1.0.0",
        "contact": "first@example.com",
        "tags": {"stage": "dev"},
        "data_type": "pandas.core.frame.DataFrame",
    }.items():
        s.equal(record.get(key), expected, f"record[{key!r}] after register")
    s.check(isinstance(record.get("timestamp"), int), "record timestamp is an int", record=record)
    s.check(
        isinstance(record.get("date"), str) and len(record["date"]) == 10,
        "date YYYY-MM-DD",
        record=record,
    )

    base = card_dir(TABLE, repository, clean, "1.0.0")
    files = sorted(s.files_list(base))
    s.equal(files, [f"{base}/card.joblib", f"{base}/data.parquet"], "stored files of the DataCard")
    s.check(s.files_exists(f"{base}/data.parquet"), "files/exists on the data file")

    loaded = registry.load_card(uid=card.uid)
    loaded.load_data()
    pd.testing.assert_frame_equal(loaded.interface.data, frame)
    s.checks += 1
    by_name = registry.load_card(name=clean, repository=repository, version="1.0.0")
    s.equal(by_name.uid, card.uid, "load_card by name/repository/version finds the same card")

    # numpy flavour, in the same repository
    array = np.arange(24, dtype=np.float64).reshape(6, 4) / 3.0
    np_card = DataCard(
        interface=NumpyData(data=array),
        name=s.unique("array-card"),
        repository=repository,
        contact="first@example.com",
    )
    registry.register_card(np_card)
    np_loaded = registry.load_card(uid=np_card.uid)
    np_loaded.load_data()
    s.check(np.array_equal(np_loaded.interface.data, array), "numpy data round-trips unchanged")

    # update: tags and contact changed, a reload shows them
    loaded.tags["stage"] = "prod"
    loaded.tags["owner"] = "team-a"
    loaded.contact = "second@example.com"
    registry.update_card(loaded)
    record = registry.list_cards(uid=card.uid)[0]
    s.equal(record["tags"], {"stage": "prod", "owner": "team-a"}, "tags after update_card")
    s.equal(record["contact"], "second@example.com", "contact after update_card")
    s.equal(record["version"], "1.0.0", "update keeps the version")
    reloaded = registry.load_card(uid=card.uid)
    s.equal(reloaded.tags, {"stage": "prod", "owner": "team-a"}, "reloaded card's tags")
    s.equal(reloaded.contact, "second@example.com", "reloaded card's contact")
    reloaded.load_data()
    pd.testing.assert_frame_equal(reloaded.interface.data, frame)
    tagged = registry.list_cards(name=clean, repository=repository, tags={"owner": "team-a"})
    s.equal([r["uid"] for r in tagged], [card.uid], "list_cards filtered by the new tag")

    # delete: gone from every listing, files gone, the other card untouched
    registry.delete_card(reloaded)
    s.equal(registry.list_cards(uid=card.uid), [], "list_cards(uid) after delete")
    names = [r["name"] for r in registry.list_cards(repository=repository, limit=100)]
    s.check(clean not in names, "deleted card absent from the repository listing", names=names)
    s.equal(s.files_list(base), [], "files/list of the deleted card's directory")
    s.check(not s.files_exists(f"{base}/data.parquet"), "deleted data file no longer exists")
    s.equal(len(registry.list_cards(uid=np_card.uid)), 1, "the other card survives the delete")


if __name__ == "__main__":
    Scenario("datacard").run(body)
