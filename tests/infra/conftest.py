"""Make infra/ importable (the programs add it to sys.path themselves when Pulumi runs them)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

INFRA_DIR = Path(__file__).resolve().parents[2] / "infra"
if str(INFRA_DIR) not in sys.path:
    sys.path.insert(0, str(INFRA_DIR))


def pytest_configure(config: pytest.Config) -> None:
    # Warnings stay errors (pyproject.toml) except one family: on import, pulumi-aws and
    # pulumi-gcp warn about their own renamed aliases ("s3.BucketV2 has been deprecated in favor
    # of s3.Bucket", "gcp.compute.MangedSslCertificate ..."), names this code never uses.
    # Matched by message *and* module, so deprecations of anything we do call still fail.
    config.addinivalue_line(
        "filterwarnings",
        r"ignore:.+ has been deprecated in favor of :DeprecationWarning:pulumi_(aws|gcp)\.",
    )


@pytest.fixture(scope="module", autouse=True)
def current_event_loop() -> Iterator[None]:
    """Pulumi's runtime asks for the thread's current event loop. A test elsewhere that used
    `asyncio.run()` leaves none set (it ends with `set_event_loop(None)`), so give each module
    here a fresh loop (module scope: the stacks are module fixtures) and close it after."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        yield
    finally:
        asyncio.set_event_loop(None)
        loop.close()
