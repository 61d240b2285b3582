"""The libraries whose private helpers we call stay on the releases the suite ran against."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from app.dependency_pins import TESTED, installed_versions, untested_versions

REPO_ROOT = Path(__file__).resolve().parents[1]


def _declared() -> dict[str, str]:
    """Every dependency of pyproject.toml (extras included) as name -> specifier."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        lines.extend(extra)
    declared: dict[str, str] = {}
    for line in lines:
        match = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+?)\s*([<>=!~].*)?", line.split(";")[0].strip())
        assert match, line
        declared[match.group(1).split("[")[0].lower()] = (match.group(2) or "").replace(" ", "")
    return declared


def _locked() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (REPO_ROOT / "constraints.txt").read_text().splitlines():
        name, sep, version = line.partition("==")
        if sep:
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def test_every_installed_pinned_library_is_a_tested_release() -> None:
    installed = installed_versions()
    assert set(installed) == set(TESTED), "make install installs every extra"
    assert untested_versions(installed) == []


def test_pyproject_declares_exactly_the_tested_ranges() -> None:
    declared = _declared()
    for name, tested in TESTED.items():
        assert declared[name] == tested.specifier, (
            f"pyproject.toml declares {name}{declared[name]}, app/dependency_pins.py tested "
            f"{tested.specifier}: change both together"
        )


def test_the_lock_file_holds_tested_releases() -> None:
    locked = _locked()
    assert untested_versions({name: locked[name] for name in TESTED}) == []


def test_an_untested_release_is_named_with_the_way_out() -> None:
    problems = untested_versions({"s3fs": "2027.1.0", "pg8000": "1.31.6", "gcsfs": "2026.9.0"})
    assert len(problems) == 2
    gcs, s3 = problems
    assert gcs.startswith("gcsfs 2026.9.0 is outside the tested range >=2026.10.0,<2026.11")
    assert s3.startswith("s3fs 2027.1.0 is outside the tested range")
    assert "app/dependency_pins.py" in s3


def test_pre_releases_and_local_tags_compare_by_their_numeric_part() -> None:
    assert untested_versions({"pg8000": "1.31.6rc1"}) == []
    assert untested_versions({"pg8000": "1.32.0.dev0"}) != []
