"""AWS program: RDS + S3 + IRSA + the chart on an existing EKS cluster."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws

from .. import aws
from ..app import App
from .common import app_args, common_outputs, read_server_settings


def run() -> dict[str, Any]:
    config = pulumi.Config()
    server = read_server_settings(config)
    region = config.require("region")

    provider = pulumi_aws.Provider("aws", region=region)
    opts = pulumi.ResourceOptions(providers=[provider])

    database = aws.Database(
        "opsml-db",
        aws.DatabaseArgs(
            vpc_id=config.require("vpcId"),
            private_subnet_ids=list(config.require_object("privateSubnetIds")),
            client_security_group_id=config.require("clusterSecurityGroupId"),
            instance_class=config.get("dbInstanceClass") or "db.t4g.micro",
            engine_version=config.get("dbEngineVersion") or "16",
            allocated_storage_gb=config.get_int("dbAllocatedStorageGb", 20),
            deletion_protection=server.deletion_protection,
            multi_az=config.get_bool("multiAz", False),
        ),
        opts,
    )
    bucket = aws.Bucket("opsml-bucket", aws.BucketArgs(prefix=server.storage_prefix), opts)
    identity = aws.Identity(
        "opsml-identity",
        aws.IdentityArgs(
            oidc_provider_arn=config.require("oidcProviderArn"),
            bucket_arn=bucket.arn,
            namespace=server.namespace,
            service_account_name=server.service_account_name,
        ),
        opts,
    )
    app = App(
        "opsml-app",
        app_args(
            server,
            "aws",
            database.tracking_uri,
            bucket.storage_uri,
            aws_role_arn=identity.role_arn,
            aws_region=region,
        ),
        # Bindings and the database must exist before the pods start and the migration runs.
        pulumi.ResourceOptions(depends_on=[database, identity]),
    )
    return {
        **common_outputs(app, bucket.storage_uri, database.host, database.tracking_uri),
        "identity": identity.role_arn,
    }
