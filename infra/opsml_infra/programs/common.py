"""Config keys every cloud's project shares (declared in each Pulumi.yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from ..app import App, AppArgs
from ..chart_values import Cloud


@dataclass(frozen=True)
class ServerSettings:
    """Where and how the chart is installed."""

    kubeconfig: pulumi.Output[str]
    namespace: str
    create_namespace: bool
    release_name: str
    service_account_name: str
    chart_path: str
    storage_prefix: str
    pool_size: int
    max_overflow: int
    deletion_protection: bool
    image_repository: str
    image_tag: str


def read_server_settings(config: pulumi.Config) -> ServerSettings:
    """The shared keys; defaults here mirror the `default:` entries of Pulumi.yaml."""
    return ServerSettings(
        # A secret: a kubeconfig usually carries a token or client key.
        kubeconfig=config.require_secret("kubeconfig"),
        namespace=config.get("namespace") or "opsml",
        create_namespace=config.get_bool("createNamespace", True),
        release_name=config.get("releaseName") or "opsml-server",
        service_account_name=config.get("serviceAccountName") or "opsml-server",
        # Relative to the project directory, where `pulumi up` runs the program.
        chart_path=config.get("chartPath") or "../../charts/opsml-server",
        storage_prefix=config.get("storagePrefix") or "opsml",
        pool_size=config.get_int("poolSize", 10),
        max_overflow=config.get_int("maxOverflow", 5),
        deletion_protection=config.get_bool("deletionProtection", True),
        image_repository=config.get("imageRepository") or "",
        image_tag=config.get("imageTag") or "",
    )


def app_args(
    server: ServerSettings,
    cloud: Cloud,
    tracking_uri: pulumi.Input[str],
    storage_uri: pulumi.Input[str],
    **cloud_fields: Any,
) -> AppArgs:
    """AppArgs from the shared settings plus the cloud's own wiring fields."""
    return AppArgs(
        kubeconfig=server.kubeconfig,
        cloud=cloud,
        tracking_uri=tracking_uri,
        storage_uri=storage_uri,
        chart_path=server.chart_path,
        namespace=server.namespace,
        create_namespace=server.create_namespace,
        release_name=server.release_name,
        service_account_name=server.service_account_name,
        pool_size=server.pool_size,
        max_overflow=server.max_overflow,
        image_repository=server.image_repository,
        image_tag=server.image_tag,
        **cloud_fields,
    )


def common_outputs(
    app: App, storage_uri: pulumi.Output[str], host: pulumi.Output[str], tracking: Any
) -> dict[str, Any]:
    """Stack outputs every cloud exports (camelCase, like the config keys)."""
    return {
        "serverUrl": app.url,
        "serviceName": app.service_name,
        "namespace": app.namespace,
        "bucketUri": storage_uri,
        "databaseHost": host,
        # Secret: `pulumi stack output trackingUri --show-secrets` for a one-off psql session.
        "trackingUri": pulumi.Output.secret(tracking),
    }
