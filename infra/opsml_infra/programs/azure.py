"""Azure program: Flexible Server + Blob container + workload identity + the chart on AKS."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_azure_native

from .. import azure
from ..app import App
from .common import app_args, common_outputs, read_server_settings


def run() -> dict[str, Any]:
    config = pulumi.Config()
    server = read_server_settings(config)
    location = config.require("location")
    resource_group = config.require("resourceGroupName")

    # Subscription and credentials come from the usual azure-native sources (az login, ARM_*).
    provider = pulumi_azure_native.Provider("azure", location=location)
    opts = pulumi.ResourceOptions(providers=[provider])

    database = azure.Database(
        "opsml-db",
        azure.DatabaseArgs(
            resource_group_name=resource_group,
            location=location,
            delegated_subnet_id=config.require("dbSubnetId"),
            private_dns_zone_id=config.require("privateDnsZoneId"),
            sku_name=config.get("dbSkuName") or "Standard_B1ms",
            sku_tier=config.get("dbSkuTier") or "Burstable",
            version=config.get("dbVersion") or "16",
            deletion_protection=server.deletion_protection,
        ),
        opts,
    )
    bucket = azure.Bucket(
        "opsml-bucket",
        azure.BucketArgs(
            resource_group_name=resource_group,
            location=location,
            prefix=server.storage_prefix,
            deletion_protection=server.deletion_protection,
        ),
        opts,
    )
    identity = azure.Identity(
        "opsml-identity",
        azure.IdentityArgs(
            resource_group_name=resource_group,
            location=location,
            oidc_issuer_url=config.require("oidcIssuerUrl"),
            storage_account_id=bucket.account.id,
            container_id=bucket.container_id,
            namespace=server.namespace,
            service_account_name=server.service_account_name,
        ),
        opts,
    )
    app = App(
        "opsml-app",
        app_args(
            server,
            "azure",
            database.tracking_uri,
            bucket.storage_uri,
            azure_client_id=identity.client_id,
            azure_tenant_id=identity.tenant_id,
            azure_storage_account_name=bucket.account_name,
        ),
        # Bindings and the database must exist before the pods start and the migration runs.
        pulumi.ResourceOptions(depends_on=[database, identity]),
    )
    return {
        **common_outputs(app, bucket.storage_uri, database.host, database.tracking_uri),
        "identity": identity.client_id,
        "storageAccountName": bucket.account_name,
    }
