"""GCP: Cloud SQL for PostgreSQL (private IP), a GCS bucket, and a Workload Identity account."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp
import pulumi_random as random

from .passwords import database_password
from .uris import storage_uri as make_storage_uri
from .uris import tracking_uri


@dataclass
class DatabaseArgs:
    """A private-IP Cloud SQL instance on the cluster's VPC."""

    project: str
    region: str
    # VPC the cluster runs in (id or self link), e.g. projects/p/global/networks/default.
    network: pulumi.Input[str]
    # Reserve a range and peer it with servicenetworking; off when the VPC already has
    # private services access (one peering per VPC).
    create_private_service_access: bool = True
    tier: str = "db-custom-1-3840"
    database_version: str = "POSTGRES_16"
    database_name: str = "opsml"
    user_name: str = "opsml"
    deletion_protection: bool = True
    high_availability: bool = False


class Database(pulumi.ComponentResource):
    """Cloud SQL instance with no public IP, backups + PITR, a database and a user."""

    def __init__(
        self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("opsml:gcp:Database", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        depends: list[pulumi.Resource] = []
        if args.create_private_service_access:
            peering_range = gcp.compute.GlobalAddress(
                f"{name}-psa-range",
                project=args.project,
                network=args.network,
                purpose="VPC_PEERING",
                address_type="INTERNAL",
                prefix_length=16,
                opts=child,
            )
            depends.append(
                gcp.servicenetworking.Connection(
                    f"{name}-psa",
                    network=args.network,
                    service="servicenetworking.googleapis.com",
                    reserved_peering_ranges=[peering_range.name],
                    opts=child,
                )
            )

        self.instance: gcp.sql.DatabaseInstance = gcp.sql.DatabaseInstance(
            f"{name}-instance",
            project=args.project,
            region=args.region,
            database_version=args.database_version,
            deletion_protection=args.deletion_protection,
            settings={
                "tier": args.tier,
                # Explicit: newer Postgres versions default to Enterprise Plus, which rejects
                # shared-core and custom tiers.
                "edition": "ENTERPRISE",
                "availability_type": "REGIONAL" if args.high_availability else "ZONAL",
                "deletion_protection_enabled": args.deletion_protection,
                "disk_autoresize": True,
                "ip_configuration": {
                    # Private IP only: reachable from the VPC, never from the internet.
                    "ipv4_enabled": False,
                    # TLS required; pg8000 negotiates it by default.
                    "ssl_mode": "ENCRYPTED_ONLY",
                    "private_network": args.network,
                    "authorized_networks": [],
                },
                "backup_configuration": {
                    "enabled": True,
                    "point_in_time_recovery_enabled": True,
                    "backup_retention_settings": {"retained_backups": 7},
                },
                "user_labels": {"app": "opsml-server"},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends),
        )
        database = gcp.sql.Database(
            f"{name}-db",
            project=args.project,
            instance=self.instance.name,
            name=args.database_name,
            opts=child,
        )
        self.password: random.RandomPassword = database_password(f"{name}-password", child)
        # Marked here too: pulumi-random flags `result` secret only in the engine.
        secret_password: pulumi.Output[str] = pulumi.Output.secret(self.password.result)
        user = gcp.sql.User(
            f"{name}-user",
            project=args.project,
            instance=self.instance.name,
            name=args.user_name,
            password=secret_password,
            opts=child,
        )
        self.host: pulumi.Output[str] = self.instance.private_ip_address
        self.tracking_uri: pulumi.Output[str] = tracking_uri(
            user.name, self.password.result, self.host, database.name
        )
        self.register_outputs(
            {
                "instance": self.instance.name,
                "connection_name": self.instance.connection_name,
                "host": self.host,
                "tracking_uri": self.tracking_uri,
            }
        )


@dataclass
class BucketArgs:
    """A private GCS bucket for artifacts."""

    project: str
    location: str
    prefix: str = "opsml"
    # Refuse `pulumi destroy` of a non-empty bucket unless told otherwise.
    force_destroy: bool = False


class Bucket(pulumi.ComponentResource):
    """GCS bucket: uniform access, public access prevention, versioning."""

    def __init__(
        self, name: str, args: BucketArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("opsml:gcp:Bucket", name, None, opts)
        self.bucket: gcp.storage.Bucket = gcp.storage.Bucket(
            f"{name}-bucket",
            project=args.project,
            location=args.location,
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            versioning={"enabled": True},
            force_destroy=args.force_destroy,
            labels={"app": "opsml-server"},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.name: pulumi.Output[str] = self.bucket.name
        self.storage_uri: pulumi.Output[str] = self.bucket.name.apply(
            lambda b: make_storage_uri("gs", b, args.prefix)
        )
        self.register_outputs({"name": self.name, "storage_uri": self.storage_uri})


@dataclass
class IdentityArgs:
    """A Google service account the server's Kubernetes ServiceAccount impersonates."""

    project: str
    bucket_name: pulumi.Input[str]
    # Instance name, to scope Cloud SQL client to this one instance through an IAM condition.
    sql_instance_name: pulumi.Input[str]
    namespace: str
    service_account_name: str
    account_id: str = "opsml-server"


class Identity(pulumi.ComponentResource):
    """Service account with rights on one bucket, Cloud SQL client, WI and self token-creator."""

    def __init__(
        self, name: str, args: IdentityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("opsml:gcp:Identity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.account: gcp.serviceaccount.Account = gcp.serviceaccount.Account(
            f"{name}-account",
            project=args.project,
            account_id=args.account_id,
            display_name="OpsML server",
            opts=child,
        )
        self.email: pulumi.Output[str] = self.account.email
        member = self.email.apply(lambda e: f"serviceAccount:{e}")

        # Bucket-level bindings only: objectAdmin for the artifacts, legacyBucketReader for the
        # buckets.get the readiness check makes. Nothing at project level.
        for suffix, role in (
            ("objects", "roles/storage.objectAdmin"),
            ("bucket-reader", "roles/storage.legacyBucketReader"),
        ):
            gcp.storage.BucketIAMMember(
                f"{name}-{suffix}",
                bucket=args.bucket_name,
                role=role,
                member=member,
                opts=child,
            )

        # cloudsql.client can only be granted on the project; the condition narrows it to the
        # one instance.
        gcp.projects.IAMMember(
            f"{name}-sql-client",
            project=args.project,
            role="roles/cloudsql.client",
            member=member,
            condition={
                "title": "opsml-instance-only",
                "expression": pulumi.Output.from_input(args.sql_instance_name).apply(
                    lambda i: (
                        'resource.type == "sqladmin.googleapis.com/Instance" && '
                        f'resource.name == "projects/{args.project}/instances/{i}"'
                    )
                ),
            },
            opts=child,
        )

        # Workload Identity: the one Kubernetes ServiceAccount may act as this account.
        gcp.serviceaccount.IAMMember(
            f"{name}-workload-identity",
            service_account_id=self.account.name,
            role="roles/iam.workloadIdentityUser",
            member=(
                f"serviceAccount:{args.project}.svc.id.goog"
                f"[{args.namespace}/{args.service_account_name}]"
            ),
            opts=child,
        )
        # Keyless V4 signed URLs: the server signs through IAM signBlob as itself, which needs
        # token-creator on its own account (and nowhere else).
        gcp.serviceaccount.IAMMember(
            f"{name}-self-signer",
            service_account_id=self.account.name,
            role="roles/iam.serviceAccountTokenCreator",
            member=member,
            opts=child,
        )
        self.register_outputs({"email": self.email})
