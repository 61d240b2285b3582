"""Fixtures of the container suite: a Docker engine, the image built from this checkout.

Every container uses the host network (this machine's engine has no bridge), so the server,
Postgres on 127.0.0.1 and the storage emulators all meet on loopback. testcontainers' reaper
(Ryuk) is off: it is an image from a public registry, and every test stops what it started.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.containers.image import BuiltImage, build_image

pytestmark = pytest.mark.containers


@pytest.fixture(scope="session")
def server_image() -> Iterator[BuiltImage]:
    built = build_image()
    saved = {key: os.environ.get(key) for key in ("DOCKER_HOST", "TESTCONTAINERS_RYUK_DISABLED")}
    os.environ["DOCKER_HOST"] = built.docker_host
    os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"
    yield built
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
