"""pytest fixtures: `opsml_server` (a started container) and `opsml_server_image` (its image).

Installed as a pytest plugin by this package. The image comes from `--opsml-server-image`, the
`OPSML_SERVER_IMAGE` variable, or `opsml-server:latest`; override the `opsml_server_image` or
`opsml_server_options` fixtures in a conftest.py to choose per suite. The server is shared by
the whole session (one container start); `OPSML_TRACKING_URI` points at it during each test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from opsml_server_testcontainers import OpsmlServerContainer

DEFAULT_IMAGE = "opsml-server:latest"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--opsml-server-image",
        default=None,
        help=f"image of the opsml_server fixture (default $OPSML_SERVER_IMAGE or {DEFAULT_IMAGE})",
    )


@pytest.fixture(scope="session")
def opsml_server_image(pytestconfig: pytest.Config) -> str:
    chosen: str | None = pytestconfig.getoption("--opsml-server-image")
    return chosen or os.environ.get("OPSML_SERVER_IMAGE") or DEFAULT_IMAGE


@pytest.fixture(scope="session")
def opsml_server_options() -> dict[str, Any]:
    """Keyword arguments for `OpsmlServerContainer` (tracking_uri, storage_uri, env, ...)."""
    return {}


@pytest.fixture(scope="session")
def opsml_server_container(
    opsml_server_image: str, opsml_server_options: dict[str, Any]
) -> Iterator[OpsmlServerContainer]:
    with OpsmlServerContainer(opsml_server_image, **opsml_server_options) as server:
        yield server


@pytest.fixture
def opsml_server(
    opsml_server_container: OpsmlServerContainer, monkeypatch: pytest.MonkeyPatch
) -> OpsmlServerContainer:
    monkeypatch.setenv("OPSML_TRACKING_URI", opsml_server_container.tracking_uri)
    return opsml_server_container
