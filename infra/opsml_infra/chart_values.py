"""Chart values for `charts/opsml-server`, built from plain values.

A plain function on purpose: the cross-check test renders the real chart with exactly these
values, without Pulumi. The App component calls it inside an `apply` once the cloud resources
have resolved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Cloud = Literal["gcp", "aws", "azure"]
CLOUDS: tuple[Cloud, ...] = ("gcp", "aws", "azure")

# Key of OPSML_TRACKING_URI inside the Secret the App component creates.
TRACKING_SECRET_KEY = "OPSML_TRACKING_URI"


@dataclass(frozen=True)
class ChartWiring:
    """Everything the chart needs from the created resources (all plain, resolved values)."""

    cloud: Cloud
    release_name: str
    service_account_name: str
    storage_uri: str
    tracking_secret_name: str
    tracking_secret_key: str = TRACKING_SECRET_KEY
    pool_size: int = 10
    max_overflow: int = 5
    # GCP: the Google service account the Kubernetes one impersonates (Workload Identity).
    gcp_service_account: str = ""
    # AWS: the IRSA role and the bucket's region.
    aws_role_arn: str = ""
    aws_region: str = ""
    # Azure: the user-assigned identity (Workload Identity) and the storage account.
    azure_client_id: str = ""
    azure_tenant_id: str = ""
    azure_storage_account_name: str = ""
    # Empty: the chart's defaults.
    image_repository: str = ""
    image_tag: str = ""
    replica_count: int | None = None


def _require(wiring: ChartWiring, *fields: str) -> None:
    missing = [f for f in fields if not getattr(wiring, f)]
    if missing:
        raise ValueError(f"cloud {wiring.cloud!r} needs {', '.join(missing)}")


def _cloud_values(wiring: ChartWiring) -> dict[str, Any]:
    if wiring.cloud == "gcp":
        _require(wiring, "gcp_service_account")
        return {"serviceAccount": wiring.gcp_service_account}
    if wiring.cloud == "aws":
        _require(wiring, "aws_role_arn", "aws_region")
        return {"roleArn": wiring.aws_role_arn, "region": wiring.aws_region}
    if wiring.cloud == "azure":
        _require(wiring, "azure_client_id", "azure_tenant_id", "azure_storage_account_name")
        return {
            "clientId": wiring.azure_client_id,
            "tenantId": wiring.azure_tenant_id,
            "storageAccountName": wiring.azure_storage_account_name,
        }
    raise ValueError(f"unknown cloud {wiring.cloud!r}; expected one of {CLOUDS}")


def build_chart_values(wiring: ChartWiring) -> dict[str, Any]:
    """The values passed to the chart. Holds no secret: the tracking URI stays in its Secret."""
    _require(wiring, "release_name", "service_account_name", "storage_uri", "tracking_secret_name")
    values: dict[str, Any] = {
        # Fixed names: the identity bindings name the Kubernetes ServiceAccount up front, and the
        # stack output names the Service.
        "fullnameOverride": wiring.release_name,
        "serviceAccount": {"create": True, "name": wiring.service_account_name},
        "cloud": {"preset": wiring.cloud, wiring.cloud: _cloud_values(wiring)},
        "database": {
            "existingSecret": wiring.tracking_secret_name,
            "existingSecretKey": wiring.tracking_secret_key,
            "poolSize": wiring.pool_size,
            "maxOverflow": wiring.max_overflow,
        },
        "storage": {"uri": wiring.storage_uri},
        # A plain Job rather than a Helm hook: the hook variant runs under a twin
        # ServiceAccount (created before the release's own), which the identity bindings do
        # not trust; the plain Job uses the one ServiceAccount above. The same values also
        # work with Chart v4, which skips hooks. The Release waits for it (wait_for_jobs).
        "migrations": {"useHelmHooks": False},
    }
    image: dict[str, str] = {}
    if wiring.image_repository:
        image["repository"] = wiring.image_repository
    if wiring.image_tag:
        image["tag"] = wiring.image_tag
    if image:
        values["image"] = image
    if wiring.replica_count is not None:
        values["replicaCount"] = wiring.replica_count
    return values


def service_host(release_name: str, namespace: str) -> str:
    """In-cluster DNS name of the chart's Service (fullnameOverride = release name)."""
    return f"{release_name}.{namespace}.svc.cluster.local"
