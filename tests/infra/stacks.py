"""Example stack config per cloud, and each program run once under mocks (results cached)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .harness import Run, run_program

INFRA_DIR = Path(__file__).resolve().parents[2] / "infra"
CHART_DIR = Path(__file__).resolve().parents[2] / "charts" / "opsml-server"
KUBECONFIG = "apiVersion: v1\nkind: Config\nusers: [{name: u, user: {token: s3cr3t-token}}]\n"

# Shared keys, with non-default pool settings so the tests can see they are wired through.
COMMON: dict[str, Any] = {
    "kubeconfig": KUBECONFIG,
    "namespace": "registry",
    "serviceAccountName": "opsml-sa",
    "chartPath": str(CHART_DIR),
    "poolSize": "7",
    "maxOverflow": "3",
}

CONFIGS: dict[str, dict[str, Any]] = {
    "gcp": {
        **COMMON,
        "gcpProject": "my-project",
        "region": "europe-west1",
        "network": "projects/my-project/global/networks/gke",
    },
    "aws": {
        **COMMON,
        "region": "eu-west-1",
        "vpcId": "vpc-0abc",
        "privateSubnetIds": ["subnet-private-a", "subnet-private-b"],
        "clusterSecurityGroupId": "sg-0cluster",
        "oidcProviderArn": (
            "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC123"
        ),
    },
    "azure": {
        **COMMON,
        "location": "westeurope",
        "resourceGroupName": "opsml-rg",
        "dbSubnetId": (
            "/subscriptions/s/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/"
            "aks/subnets/postgres"
        ),
        "privateDnsZoneId": (
            "/subscriptions/s/resourceGroups/net/providers/Microsoft.Network/privateDnsZones/"
            "opsml.private.postgres.database.azure.com"
        ),
        "oidcIssuerUrl": "https://westeurope.oic.prod-aks.azure.com/tenant/issuer/",
    },
}


def _program(cloud: str) -> Callable[[], Mapping[str, Any]]:
    # Imported here: each cloud's provider SDK is loaded only by its own tests.
    if cloud == "gcp":
        from opsml_infra.programs import gcp

        return gcp.run
    if cloud == "aws":
        from opsml_infra.programs import aws

        return aws.run
    from opsml_infra.programs import azure

    return azure.run


@functools.cache
def program_run(cloud: str) -> Run:
    """The cloud's real program, run once per test session under mocks."""
    return run_program(f"opsml-server-{cloud}", CONFIGS[cloud], _program(cloud))


def release_values(run: Run) -> dict[str, Any]:
    """The values the program hands to the chart (integral floats back to ints: the mock
    monitor's protobuf Struct turns every number into a float)."""
    release = run.one("kubernetes:helm.sh/v3:Release")
    return _ints(release.inputs["values"])


def _ints(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _ints(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_ints(v) for v in data]
    if isinstance(data, float) and data.is_integer():
        return int(data)
    return data
