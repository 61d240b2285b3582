"""Version assignment and list_cards filters.

Registers one card name through major/minor/patch bumps, a user-supplied version and a
pre-release, then checks ``cards/version`` answers and the ``cards/list`` semantics for
``^``, ``~``, ``*`` ranges, full versions, ``ignore_release_candidates``, tags and limits.
"""

from __future__ import annotations

import numpy as np
from _common import Scenario
from opsml import CardRegistry, DataCard, NumpyData


def body(s: Scenario) -> None:
    registry = CardRegistry("data")
    repository = "compat-versions"
    name = s.unique("versioned")
    array = np.zeros((2, 2))
    uids: dict[str, str] = {}

    def register(
        version_type: str, version: str | None = None, tags: dict[str, str] | None = None
    ) -> str:
        extra = {"version": version} if version else {}
        card = DataCard(
            interface=NumpyData(data=array),
            name=name,
            repository=repository,
            contact="v@example.com",
            tags=tags or {},
            **extra,
        )
        registry.register_card(card, version_type=version_type)
        uids[card.version] = card.uid
        return card.version

    steps = [
        ("minor", None, "1.0.0"),
        ("patch", None, "1.0.1"),
        ("minor", None, "1.1.0"),
        ("minor", None, "1.2.0"),
        ("patch", None, "1.2.1"),
        ("major", None, "2.0.0"),
        ("pre", "2.1.0", "2.1.0-rc.1"),
        ("pre", "2.1.0", "2.1.0-rc.2"),
        ("minor", "1.5.0", "1.5.0"),  # a full user-supplied version is taken as is
    ]
    got = []
    for version_type, supplied, expected in steps:
        version = register(version_type, supplied)
        got.append(version)
        s.equal(
            version, expected, f"register_card(version_type={version_type!r}, version={supplied!r})"
        )
    s.facts["versions"] = got

    def versions(**filters: object) -> list[str]:
        return [
            r["version"] for r in registry.list_cards(name=name, repository=repository, **filters)
        ]

    everything = [
        "2.1.0-rc.2",
        "2.1.0-rc.1",
        "2.0.0",
        "1.5.0",
        "1.2.1",
        "1.2.0",
        "1.1.0",
        "1.0.1",
        "1.0.0",
    ]
    s.equal(versions(), everything, "list_cards(name) is sorted by semver, newest first")
    s.equal(versions(version="^1"), ["1.5.0"], "version='^1' returns only the newest 1.x")
    s.equal(versions(version="~1.2"), ["1.2.1"], "version='~1.2' returns only the newest 1.2.x")
    s.equal(
        versions(version="1.*"),
        ["1.5.0", "1.2.1", "1.2.0", "1.1.0", "1.0.1", "1.0.0"],
        "version='1.*' returns every 1.x",
    )
    s.equal(versions(version="1.2.0"), ["1.2.0"], "a full version matches exactly")
    s.equal(versions(version="2.1.0-rc.1"), ["2.1.0-rc.1"], "a full pre-release version")
    s.equal(
        versions(ignore_release_candidates=True),
        [v for v in everything if "-rc" not in v],
        "ignore_release_candidates drops pre-releases",
    )
    s.equal(versions(limit=3), everything[:3], "limit=3 keeps the three newest")

    # a final release of the pre-released version: minor on top of 2.1.0-rc.2 gives 2.1.0
    s.equal(register("minor"), "2.1.0", "minor after a pre-release yields its final version")
    s.equal(register("patch", tags={"release": "candidate"}), "2.1.1", "patch after 2.1.0")
    s.equal(versions(version="^2", ignore_release_candidates=True), ["2.1.1"], "^2 without rcs")
    s.equal(versions(tags={"release": "candidate"}), ["2.1.1"], "tags filter")

    loaded = registry.load_card(name=name, repository=repository, version="~1.2")
    s.equal(loaded.uid, uids["1.2.1"], "load_card(version='~1.2') loads 1.2.1")
    latest = registry.load_card(name=name, repository=repository)
    s.equal(latest.version, "2.1.1", "load_card without version loads the newest")

    # a second name in the same repository: filters by name and by repository
    other = s.unique("other")
    card = DataCard(
        interface=NumpyData(data=array), name=other, repository=repository, contact="v@example.com"
    )
    registry.register_card(card, version_type="patch")
    s.equal(card.version, "1.0.0", "first version with version_type='patch'")
    in_repo = {r["name"] for r in registry.list_cards(repository=repository, limit=200)}
    s.check(
        {name, other} <= in_repo, "list_cards(repository) shows both names", names=sorted(in_repo)
    )

    # duplicate of an existing full version is refused by the client's own check
    try:
        register("minor", "1.2.0")
    except Exception as error:
        s.check("already exists" in str(error), "duplicate version refused", error=str(error))
    else:
        s.check(False, "registering an existing full version must be refused")


if __name__ == "__main__":
    Scenario("list_versions").run(body)
