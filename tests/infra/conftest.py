"""Make infra/ importable (the programs add it to sys.path themselves when Pulumi runs them)."""

from __future__ import annotations

import sys
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
