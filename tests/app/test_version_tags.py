"""Dotted pre-release and build tags in cards/version (issue 15): `rc.1`, `git.<sha>` make valid
semver and the reference accepts them; every answer here is the reference 2.2.4's."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.services.semver import ERR_BAD_TAG
from tests.app.helpers import create


def _version(
    client: TestClient, name: str, repo: str, version_type: str, pre_tag: str, build_tag: str
) -> tuple[int, str]:
    response = client.post(
        "/opsml/cards/version",
        json={
            "name": name,
            "repository": repo,
            "registry_type": "data",
            "version_type": version_type,
            "pre_tag": pre_tag,
            "build_tag": build_tag,
            "version": {"version": "1.0.0"},
        },
    )
    body = response.json()
    return response.status_code, body.get("version") or body["detail"]


@pytest.mark.parametrize(
    ("version_type", "pre_tag", "build_tag", "first", "second"),
    [
        ("pre", "rc.1", "build", "1.0.0-rc.1.1", "1.0.0-rc.1.2"),
        ("build", "rc", "git.abc123f", "1.0.0+git.abc123f.1", "1.0.0+git.abc123f.2"),
        ("build", "rc", "git.0a1b2c", "1.0.0+git.0a1b2c.1", "1.0.0+git.0a1b2c.2"),
        ("pre_build", "rc.1", "git.abc123f", "1.0.0-rc.1.1+git.abc123f.1", None),
        ("pre", "alpha.beta-2", "build", "1.0.0-alpha.beta-2.1", "1.0.0-alpha.beta-2.2"),
    ],
)
def test_dotted_tags_are_accepted_and_bumped(
    client: TestClient,
    unique: str,
    version_type: str,
    pre_tag: str,
    build_tag: str,
    first: str,
    second: str | None,
) -> None:
    repo = f"repo-{unique}"
    assert _version(client, "tagged", repo, version_type, pre_tag, build_tag) == (200, first)
    create(client, "tagged", repo, first)
    if second is not None:
        assert _version(client, "tagged", repo, version_type, pre_tag, build_tag) == (200, second)


@pytest.mark.parametrize(
    ("pre_tag", "build_tag", "bad", "what"),
    [
        ("rc..1", "build", "rc..1", "pre_tag"),  # an empty identifier
        ("rc.01", "build", "rc.01", "pre_tag"),  # a numeric pre-release identifier with a 0
        ("rc", "a_b", "a_b", "build_tag"),
        ("rc+1", "build", "rc+1", "pre_tag"),
        ("rc", "git.", "git.", "build_tag"),
    ],
)
def test_tags_that_make_no_semver_are_a_clear_400(
    client: TestClient, unique: str, pre_tag: str, build_tag: str, bad: str, what: str
) -> None:
    # The reference answers these with versions no semver parser reads back (e.g.
    # 1.0.0-rc..1.1); we refuse them, which no released client sends by default.
    got = _version(client, "tagged", f"repo-{unique}", "pre_build", pre_tag, build_tag)
    assert got == (400, ERR_BAD_TAG.format(what=what, tag=bad))
