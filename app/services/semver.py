"""Semantic versions as OpsML uses them: parse, order, bump, and match a search prefix.

Written against the SemVer 2.0.0 spec and the reference client's observable behaviour
(`bump_prerelease` gives `1.0.0-rc.1`, `bump_build` gives `1.0.0+build.1`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import cached_property, lru_cache, total_ordering
from operator import itemgetter
from typing import Any

SEMVER_PATTERN = (
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
# No leading zeros, as in a full version: "01" padded to "01.0.0" is no semantic version.
PARTIAL_PATTERN = r"^(?:0|[1-9]\d*)(?:\.(?:0|[1-9]\d*))?$"
# Dot-separated identifiers, as semver allows them after "-" (pre-release: numeric ones
# without leading zeros) and after "+" (build): `rc`, `rc.1`, `git.3f2a9c1`.
_PRE_IDENTIFIER = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
PRE_TAG_PATTERN = rf"^{_PRE_IDENTIFIER}(?:\.{_PRE_IDENTIFIER})*$"
BUILD_TAG_PATTERN = r"^[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*$"
_SEMVER = re.compile(SEMVER_PATTERN)
_PARTIAL = re.compile(PARTIAL_PATTERN)
_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")
ERR_BAD_TAG = (
    "{what} '{tag}' must be dot-separated identifiers of letters, digits and '-' that make a "
    "semantic version (e.g. rc, rc.1, git.3f2a9c1)"
)


class VersionType(StrEnum):
    MAJOR = "major"
    MINOR = "minor"
    PATCH = "patch"
    PRE = "pre"
    BUILD = "build"
    PRE_BUILD = "pre_build"

    @property
    def bumps_release(self) -> bool:
        return self in (VersionType.MAJOR, VersionType.MINOR, VersionType.PATCH)


class VersionFormatError(ValueError):
    """Not a version this registry accepts."""


def _identifier_key(identifier: str) -> tuple[int, int, str]:
    # SemVer §11: numeric identifiers sort numerically and below alphanumeric ones.
    return (0, int(identifier), "") if identifier.isdigit() else (1, 0, identifier)


@total_ordering
@dataclass(frozen=True)
class SemVer:
    major: int
    minor: int
    patch: int
    prerelease: str | None = None
    build: str | None = None

    @classmethod
    def parse(cls, text: str) -> SemVer:
        match = _SEMVER.match(text.strip())
        if match is None:
            raise VersionFormatError(f"'{text}' is not a semantic version (e.g. 1.2.0)")
        major, minor, patch, pre, build = match.groups()
        return cls(int(major), int(minor), int(patch), pre, build)

    @classmethod
    def try_parse(cls, text: object) -> SemVer | None:
        # Anything not text (a legacy SQLite row may hold a number) is simply not a version.
        return _parse_or_none(text) if isinstance(text, str) else None

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += f"-{self.prerelease}"
        if self.build:
            text += f"+{self.build}"
        return text

    @property
    def is_prerelease(self) -> bool:
        return self.prerelease is not None

    def finalized(self) -> SemVer:
        return SemVer(self.major, self.minor, self.patch)

    @cached_property
    def sort_key(self) -> tuple[Any, ...]:
        """SemVer precedence as a tuple: sorting by it compares in C, once per version."""
        pre: tuple[object, ...]
        if self.prerelease is None:
            pre = (1,)  # a release outranks its pre-releases
        else:
            pre = (0, tuple(_identifier_key(part) for part in self.prerelease.split(".")))
        # Build metadata has no precedence in SemVer; it only breaks ties deterministically.
        build = tuple(_identifier_key(part) for part in self.build.split(".")) if self.build else ()
        return (self.major, self.minor, self.patch, pre, build)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, SemVer):
            return NotImplemented
        return bool(self.sort_key < other.sort_key)

    def bump(
        self, version_type: VersionType, pre_tag: str = "rc", build_tag: str = "build"
    ) -> SemVer:
        if version_type is VersionType.MAJOR:
            return SemVer(self.major + 1, 0, 0)
        if version_type is VersionType.MINOR:
            return SemVer(self.major, self.minor + 1, 0)
        if version_type is VersionType.PATCH:
            return SemVer(self.major, self.minor, self.patch + 1)
        if version_type is VersionType.PRE:
            return SemVer(self.major, self.minor, self.patch, _bump_tag(self.prerelease, pre_tag))
        if version_type is VersionType.BUILD:
            return replace(self, build=_bump_tag(self.build, build_tag))
        bumped = self.bump(VersionType.PRE, pre_tag, build_tag)
        return bumped.bump(VersionType.BUILD, pre_tag, build_tag)


@lru_cache(maxsize=65_536)
def _parse_or_none(text: str) -> SemVer | None:
    # Listing parses the same versions on every request; SemVer is immutable, so cache it.
    try:
        return SemVer.parse(text)
    except VersionFormatError:
        return None


def _bump_tag(current: str | None, tag: str) -> str:
    if not current:
        return f"{tag}.1"
    match = _LAST_NUMBER.search(current)
    if match is None:
        return f"{current}.1"
    start, end = match.span(1)
    return f"{current[:start]}{int(match.group(1)) + 1}{current[end:]}"


def validate_tag(tag: str, what: str, *, build: bool) -> str:
    """A pre-release or build tag is good when the version it makes is semver with the tag in
    its place: dotted tags such as `rc.1` or `git.<sha>` are (the reference accepts them too);
    `rc+1` is not (it would turn into build metadata)."""
    parsed = _parse_or_none(f"1.0.0{'+' if build else '-'}{tag}.1")
    made = (parsed.build if build else parsed.prerelease) if parsed else None
    if made != f"{tag}.1":
        raise VersionFormatError(ERR_BAD_TAG.format(what=what, tag=tag))
    return tag


def validate_supplied_version(text: str) -> str:
    """A version a user may ask for: a full semver, or `X` / `X.Y`."""
    text = text.strip()
    if len(text.split(".")) >= 3:
        SemVer.parse(text)
    elif not _PARTIAL.match(text):
        raise VersionFormatError(f"'{text}' is not a valid semver or partial semver (X, X.Y)")
    return text


def pad_version(text: str) -> SemVer:
    """`1` -> 1.0.0, `1.2` -> 1.2.0, a full version -> itself finalized (as the reference)."""
    parts = text.split(".")
    if len(parts) >= 3:
        return SemVer.parse(text).finalized()
    return SemVer.parse(".".join(parts + ["0"] * (3 - len(parts))))


def search_prefix(supplied: str, version_type: VersionType) -> str | None:
    """Which existing versions a `cards/version` request competes with."""
    parts = supplied.split(".")
    if version_type is VersionType.PATCH:
        return ".".join(parts[:2])
    if version_type is VersionType.MINOR:
        return parts[0]
    if version_type is VersionType.MAJOR:
        return None
    return str(pad_version(supplied))


def list_search_prefix(version: str) -> tuple[str, bool]:
    """Turn a `cards/list` version filter into (prefix, top_only).

    `^1.2.3` -> ('1', True), `~1.2.3` -> ('1.2', True), `1.*` -> ('1', False),
    anything else is a plain prefix.
    """
    symbols = [symbol for symbol in "^~*" if symbol in version]
    if len(symbols) > 1:
        raise VersionFormatError("Only one of ^, ~ and * is allowed in a version filter")
    if "^" in version:
        return version.split(".")[0].replace("^", ""), True
    if "~" in version:
        return ".".join(version.split(".")[:2]).replace("~", ""), True
    if "*" in version:
        return version.split("*")[0].rstrip("."), False
    return version, False


def matches_prefix(version: str, prefix: str) -> bool:
    """Component-wise prefix match: '1' matches 1.2.0 but not 10.0.0 (the reference's LIKE
    '1%' matched both)."""
    if not prefix:
        return True
    if not isinstance(version, str) or not version.startswith(prefix):
        return False
    rest = version[len(prefix) :]
    return rest == "" or rest[0] in ".-+"


def sort_descending(versions: list[str]) -> list[str]:
    """Highest first; strings that are not semver (legacy rows) go last, in text order."""
    parsed = [(SemVer.try_parse(v), v) for v in versions]
    good = [(p.sort_key, v) for p, v in parsed if p is not None]
    good.sort(key=itemgetter(0), reverse=True)
    bad = sorted((v for p, v in parsed if p is None), key=str)
    return [v for _, v in good] + bad


def next_version(
    existing: list[str],
    supplied: str | None,
    version_type: VersionType,
    pre_tag: str = "rc",
    build_tag: str = "build",
) -> str:
    """The version a new card gets, given the versions it competes with (see PROTOCOL.md)."""
    taken = [v for v in sort_descending(existing) if SemVer.try_parse(v) is not None]
    if not taken:
        start = pad_version(supplied) if supplied else SemVer(1, 0, 0)
        if version_type.bumps_release:
            return str(start)
        return str(start.bump(version_type, pre_tag, build_tag))
    highest = SemVer.parse(taken[0])
    candidate = highest
    if version_type.bumps_release and highest.is_prerelease:
        candidate = highest.finalized()
        if not any(not SemVer.parse(v).is_prerelease for v in taken):
            return str(candidate)
    taken_set = set(taken)
    while str(candidate) in taken_set:
        candidate = candidate.bump(version_type, pre_tag, build_tag)
    return str(candidate)
