"""Libraries whose private helpers the server calls, and the releases that were tested.

Downloads call private helpers of s3fs, gcsfs and adlfs (`app/storage/object_stream.py`), and
the Postgres layer reuses pg8000's message builders (`app/db/pg8000_pipelined.py`). Private
helpers change without notice, so each library is held to the range of releases the test suite
ran against. `pyproject.toml` declares exactly these ranges (a test keeps the two equal), pip
therefore refuses anything else, and a forced install is reported at start-up, one log line per
library, and fails `tests/test_dependency_pins.py`.

To move a range: change it here and in `pyproject.toml`, run `make lock` and `make test`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata

log = logging.getLogger("opsml_server")


@dataclass(frozen=True)
class TestedRange:
    """Releases from `low` (inclusive) to `high` (exclusive), compared by numeric parts."""

    low: str
    high: str
    why: str

    def contains(self, version: str) -> bool:
        return _numeric(self.low) <= _numeric(version) < _numeric(self.high)

    @property
    def specifier(self) -> str:
        return f">={self.low},<{self.high}"


TESTED: dict[str, TestedRange] = {
    "s3fs": TestedRange("2026.9.0", "2026.10", "S3 downloads call _call_s3"),
    "gcsfs": TestedRange("2026.10.0", "2026.11", "GCS downloads use its session and URL helpers"),
    "adlfs": TestedRange("2026.8.0", "2026.9", "Azure downloads call _info and _cat_file"),
    "pg8000": TestedRange("1.31.0", "1.32", "the pipelined driver reuses pg8000.core"),
}

ERR_UNTESTED = (
    "{name} {version} is outside the tested range {specifier} ({why}); install a tested "
    "release, or widen the range in app/dependency_pins.py and pyproject.toml after running "
    "the test suite on it"
)


def _numeric(version: str) -> tuple[int, ...]:
    # "2026.9.0" -> (2026, 9, 0); "1.31.6rc1" -> (1, 31, 6): a pre-release, dev or local tag
    # ends the numeric part.
    parts: list[int] = []
    for piece in version.split("."):
        match = re.match(r"\d+", piece)
        if match is None:
            break
        parts.append(int(match.group()))
        if match.end() < len(piece):
            break
    return tuple(parts)


def installed_versions() -> dict[str, str]:
    """Versions of the pinned libraries that are installed (extras not installed are absent)."""
    found: dict[str, str] = {}
    for name in TESTED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def untested_versions(installed: Mapping[str, str]) -> list[str]:
    """One message per library installed at a release the suite did not run against."""
    return [
        ERR_UNTESTED.format(
            name=name, version=version, specifier=TESTED[name].specifier, why=TESTED[name].why
        )
        for name, version in sorted(installed.items())
        if name in TESTED and not TESTED[name].contains(version)
    ]


def warn_about_untested_versions() -> None:
    for message in untested_versions(installed_versions()):
        log.warning("untested dependency", extra={"fields": {"problem": message}})
