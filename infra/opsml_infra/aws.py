"""AWS: RDS PostgreSQL in private subnets, an S3 bucket, and an IRSA role."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from .passwords import database_password
from .uris import POSTGRES_PORT, tracking_uri
from .uris import storage_uri as make_storage_uri


@dataclass
class DatabaseArgs:
    """An RDS instance reachable only from the cluster's security group."""

    vpc_id: pulumi.Input[str]
    private_subnet_ids: Sequence[pulumi.Input[str]]
    # Security group of the cluster's nodes/pods (for EKS: the cluster security group).
    client_security_group_id: pulumi.Input[str]
    instance_class: str = "db.t4g.micro"
    engine_version: str = "16"
    allocated_storage_gb: int = 20
    max_allocated_storage_gb: int = 100
    database_name: str = "opsml"
    user_name: str = "opsml"
    deletion_protection: bool = True
    backup_retention_days: int = 7
    multi_az: bool = False
    tags: dict[str, str] = field(default_factory=lambda: {"app": "opsml-server"})


class Database(pulumi.ComponentResource):
    """RDS PostgreSQL: private subnets, encrypted, backups, SG open to the cluster only."""

    def __init__(
        self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("opsml:aws:Database", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        subnets = aws.rds.SubnetGroup(
            f"{name}-subnets",
            subnet_ids=list(args.private_subnet_ids),
            description="OpsML database: private subnets only",
            tags=args.tags,
            opts=child,
        )
        # No inline rules: the one ingress rule below is the only way in, and the database needs
        # no egress at all.
        self.security_group: aws.ec2.SecurityGroup = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=args.vpc_id,
            description="OpsML database: Postgres from the cluster only",
            tags=args.tags,
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-from-cluster",
            security_group_id=self.security_group.id,
            referenced_security_group_id=args.client_security_group_id,
            ip_protocol="tcp",
            from_port=POSTGRES_PORT,
            to_port=POSTGRES_PORT,
            description="Postgres from the cluster security group",
            opts=child,
        )

        self.password: random.RandomPassword = database_password(f"{name}-password", child)

        # Marked here too: pulumi-random flags `result` secret only in the engine.

        secret_password: pulumi.Output[str] = pulumi.Output.secret(self.password.result)
        self.instance: aws.rds.Instance = aws.rds.Instance(
            f"{name}-instance",
            engine="postgres",
            engine_version=args.engine_version,
            instance_class=args.instance_class,
            allocated_storage=args.allocated_storage_gb,
            max_allocated_storage=args.max_allocated_storage_gb,
            storage_type="gp3",
            storage_encrypted=True,
            db_name=args.database_name,
            username=args.user_name,
            password=secret_password,
            port=POSTGRES_PORT,
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[self.security_group.id],
            publicly_accessible=False,
            multi_az=args.multi_az,
            backup_retention_period=args.backup_retention_days,
            deletion_protection=args.deletion_protection,
            # Keep a final snapshot on destroy; the identifier is fixed so a re-create after a
            # destroy fails loudly instead of overwriting it.
            skip_final_snapshot=False,
            final_snapshot_identifier=f"{name}-final",
            copy_tags_to_snapshot=True,
            auto_minor_version_upgrade=True,
            tags=args.tags,
            opts=child,
        )
        self.host: pulumi.Output[str] = self.instance.address
        self.tracking_uri: pulumi.Output[str] = tracking_uri(
            args.user_name, self.password.result, self.host, args.database_name
        )
        self.register_outputs(
            {
                "instance": self.instance.identifier,
                "host": self.host,
                "security_group_id": self.security_group.id,
                "tracking_uri": self.tracking_uri,
            }
        )


@dataclass
class BucketArgs:
    """A private S3 bucket for artifacts."""

    prefix: str = "opsml"
    force_destroy: bool = False
    tags: dict[str, str] = field(default_factory=lambda: {"app": "opsml-server"})


class Bucket(pulumi.ComponentResource):
    """S3 bucket: all public access blocked, owner-enforced, encrypted, versioned, TLS only."""

    def __init__(
        self, name: str, args: BucketArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("opsml:aws:Bucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.bucket: aws.s3.Bucket = aws.s3.Bucket(
            f"{name}-bucket", force_destroy=args.force_destroy, tags=args.tags, opts=child
        )
        public_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block",
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        # ACLs off: access is decided by IAM alone.
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=self.bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=self.bucket.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms"},
                    "bucket_key_enabled": True,
                }
            ],
            opts=child,
        )
        aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=self.bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=child,
        )
        # Deny plain-HTTP requests. A Deny-only policy grants nothing, so it is not "public".
        aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=self.bucket.id,
            policy=self.bucket.arn.apply(_tls_only_policy),
            # The public access block must exist first, so the policy is checked against it.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_block]),
        )
        self.name: pulumi.Output[str] = self.bucket.bucket
        self.arn: pulumi.Output[str] = self.bucket.arn
        self.storage_uri: pulumi.Output[str] = self.bucket.bucket.apply(
            lambda b: make_storage_uri("s3", b, args.prefix)
        )
        self.register_outputs({"name": self.name, "arn": self.arn, "storage_uri": self.storage_uri})


def _tls_only_policy(bucket_arn: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [bucket_arn, f"{bucket_arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )


@dataclass
class IdentityArgs:
    """An IAM role the server's Kubernetes ServiceAccount assumes through the cluster's OIDC."""

    # arn:aws:iam::<account>:oidc-provider/oidc.eks.<region>.amazonaws.com/id/<id>
    oidc_provider_arn: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    namespace: str
    service_account_name: str
    tags: dict[str, str] = field(default_factory=lambda: {"app": "opsml-server"})


class Identity(pulumi.ComponentResource):
    """IRSA role trusted for one ServiceAccount, with an inline policy on one bucket."""

    def __init__(
        self, name: str, args: IdentityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("opsml:aws:Identity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        subject = f"system:serviceaccount:{args.namespace}:{args.service_account_name}"
        self.role: aws.iam.Role = aws.iam.Role(
            f"{name}-role",
            description="OpsML server (IRSA)",
            assume_role_policy=pulumi.Output.from_input(args.oidc_provider_arn).apply(
                lambda arn: irsa_trust_policy(arn, subject)
            ),
            tags=args.tags,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-bucket-access",
            role=self.role.id,
            policy=pulumi.Output.from_input(args.bucket_arn).apply(bucket_access_policy),
            opts=child,
        )
        self.role_arn: pulumi.Output[str] = self.role.arn
        self.register_outputs({"role_arn": self.role_arn})


def oidc_issuer_host(provider_arn: str) -> str:
    """`oidc.eks.<region>.amazonaws.com/id/<id>` from the OIDC provider's ARN."""
    _, sep, host = provider_arn.partition(":oidc-provider/")
    if not sep or not host:
        raise ValueError(f"not an IAM OIDC provider ARN: {provider_arn!r}")
    return host


def irsa_trust_policy(provider_arn: str, subject: str) -> str:
    """Trust only tokens for this ServiceAccount, minted for STS, by this cluster's issuer."""
    issuer = oidc_issuer_host(provider_arn)
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": provider_arn},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {
                            f"{issuer}:sub": subject,
                            f"{issuer}:aud": "sts.amazonaws.com",
                        }
                    },
                }
            ],
        }
    )


def bucket_access_policy(bucket_arn: str) -> str:
    """List/read/write/delete in the one bucket; no bucket administration, no other bucket."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "Bucket",
                    "Effect": "Allow",
                    "Action": [
                        "s3:ListBucket",
                        "s3:GetBucketLocation",
                        "s3:ListBucketMultipartUploads",
                    ],
                    "Resource": [bucket_arn],
                },
                {
                    "Sid": "Objects",
                    "Effect": "Allow",
                    "Action": [
                        "s3:GetObject",
                        "s3:PutObject",
                        "s3:DeleteObject",
                        "s3:AbortMultipartUpload",
                        "s3:ListMultipartUploadParts",
                    ],
                    "Resource": [f"{bucket_arn}/*"],
                },
            ],
        }
    )
