"""GCP program: Cloud SQL + GCS + Workload Identity + the chart on an existing GKE cluster."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_gcp

from .. import gcp
from ..app import App
from .common import app_args, common_outputs, read_server_settings


def run() -> dict[str, Any]:
    config = pulumi.Config()
    server = read_server_settings(config)
    project = config.require("gcpProject")
    region = config.require("region")
    network = config.require("network")

    provider = pulumi_gcp.Provider("gcp", project=project, region=region)
    opts = pulumi.ResourceOptions(providers=[provider])

    database = gcp.Database(
        "opsml-db",
        gcp.DatabaseArgs(
            project=project,
            region=region,
            network=network,
            create_private_service_access=config.get_bool("createPrivateServiceAccess", True),
            tier=config.get("dbTier") or "db-custom-1-3840",
            database_version=config.get("dbVersion") or "POSTGRES_16",
            deletion_protection=server.deletion_protection,
            high_availability=config.get_bool("highAvailability", False),
        ),
        opts,
    )
    bucket = gcp.Bucket(
        "opsml-bucket",
        gcp.BucketArgs(
            project=project,
            location=config.get("bucketLocation") or region,
            prefix=server.storage_prefix,
        ),
        opts,
    )
    identity = gcp.Identity(
        "opsml-identity",
        gcp.IdentityArgs(
            project=project,
            bucket_name=bucket.name,
            sql_instance_name=database.instance.name,
            namespace=server.namespace,
            service_account_name=server.service_account_name,
        ),
        opts,
    )
    app = App(
        "opsml-app",
        app_args(
            server,
            "gcp",
            database.tracking_uri,
            bucket.storage_uri,
            gcp_service_account=identity.email,
        ),
        # Bindings and the database must exist before the pods start and the migration runs.
        pulumi.ResourceOptions(depends_on=[database, identity]),
    )
    return {
        **common_outputs(app, bucket.storage_uri, database.host, database.tracking_uri),
        "identity": identity.email,
        "sqlConnectionName": database.instance.connection_name,
    }
