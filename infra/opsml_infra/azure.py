"""Azure: PostgreSQL Flexible Server (private access), a storage container, a workload identity."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import pulumi
import pulumi_azure_native as azure
import pulumi_random as random

from .passwords import database_password
from .uris import storage_uri as make_storage_uri
from .uris import tracking_uri

# Built-in role ids (the same in every tenant).
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
# Only Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action.
STORAGE_BLOB_DELEGATOR = "db58b8e5-c6ad-4a2a-8342-4190687cbf4a"
# Audience AKS workload identity tokens are exchanged for.
WORKLOAD_IDENTITY_AUDIENCE = "api://AzureADTokenExchange"


@dataclass
class DatabaseArgs:
    """A Flexible Server injected into a delegated subnet of the cluster's VNet."""

    resource_group_name: pulumi.Input[str]
    location: str
    # Subnet delegated to Microsoft.DBforPostgreSQL/flexibleServers, routable from the cluster.
    delegated_subnet_id: pulumi.Input[str]
    # Private DNS zone (*.postgres.database.azure.com) linked to the cluster's VNet.
    private_dns_zone_id: pulumi.Input[str]
    sku_name: str = "Standard_B1ms"
    sku_tier: str = "Burstable"
    version: str = "16"
    storage_size_gb: int = 32
    database_name: str = "opsml"
    user_name: str = "opsml"
    backup_retention_days: int = 7
    geo_redundant_backup: bool = False
    deletion_protection: bool = True
    tags: dict[str, str] = field(default_factory=lambda: {"app": "opsml-server"})


class Database(pulumi.ComponentResource):
    """Flexible Server with private access only, backups, and a delete lock."""

    def __init__(
        self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("opsml:azure:Database", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.password: random.RandomPassword = database_password(f"{name}-password", child)

        # Marked here too: pulumi-random flags `result` secret only in the engine.

        secret_password: pulumi.Output[str] = pulumi.Output.secret(self.password.result)
        self.server: azure.dbforpostgresql.Server = azure.dbforpostgresql.Server(
            f"{name}-server",
            resource_group_name=args.resource_group_name,
            location=args.location,
            version=args.version,
            sku={"name": args.sku_name, "tier": args.sku_tier},
            storage={"storage_size_gb": args.storage_size_gb, "auto_grow": "Enabled"},
            administrator_login=args.user_name,
            administrator_login_password=secret_password,
            backup={
                "backup_retention_days": args.backup_retention_days,
                "geo_redundant_backup": "Enabled" if args.geo_redundant_backup else "Disabled",
            },
            # Private access (VNet integration): the server gets an address in the delegated
            # subnet and no public endpoint; no firewall rules exist to open.
            network={
                "delegated_subnet_resource_id": args.delegated_subnet_id,
                "private_dns_zone_arm_resource_id": args.private_dns_zone_id,
                "public_network_access": "Disabled",
            },
            tags=args.tags,
            opts=child,
        )
        database = azure.dbforpostgresql.Database(
            f"{name}-db",
            resource_group_name=args.resource_group_name,
            server_name=self.server.name,
            database_name=args.database_name,
            charset="UTF8",
            collation="en_US.utf8",
            opts=child,
        )
        if args.deletion_protection:
            # Flexible Server has no deletion-protection flag; a CanNotDelete lock is Azure's way.
            azure.authorization.ManagementLockByScope(
                f"{name}-lock",
                scope=self.server.id,
                level="CanNotDelete",
                notes="OpsML registry database; remove this lock to delete the server.",
                opts=child,
            )
        self.host: pulumi.Output[str] = self.server.fully_qualified_domain_name
        self.tracking_uri: pulumi.Output[str] = tracking_uri(
            args.user_name, self.password.result, self.host, database.name
        )
        self.register_outputs(
            {"server": self.server.name, "host": self.host, "tracking_uri": self.tracking_uri}
        )


@dataclass
class BucketArgs:
    """A storage account and one private container for artifacts."""

    resource_group_name: pulumi.Input[str]
    location: str
    container_name: str = "opsml"
    prefix: str = "opsml"
    sku: str = "Standard_ZRS"
    deletion_protection: bool = True
    tags: dict[str, str] = field(default_factory=lambda: {"app": "opsml-server"})


class Bucket(pulumi.ComponentResource):
    """StorageV2 account (HTTPS only, TLS 1.2, no public blobs, Entra ID only) + container."""

    def __init__(
        self, name: str, args: BucketArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("opsml:azure:Bucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # Account names are global, 3-24 lowercase letters and digits: no auto-naming from the
        # dashed resource name, so a random suffix keeps them unique.
        suffix = random.RandomString(
            f"{name}-suffix", length=12, special=False, upper=False, opts=child
        )
        self.account: azure.storage.StorageAccount = azure.storage.StorageAccount(
            f"{name}-account",
            account_name=suffix.result.apply(lambda s: f"opsml{s}"),
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind="StorageV2",
            sku={"name": args.sku},
            enable_https_traffic_only=True,
            minimum_tls_version="TLS1_2",
            allow_blob_public_access=False,
            # Entra ID only: no account keys, so no key-signed SAS; the server signs with a
            # user delegation key from its managed identity.
            allow_shared_key_access=False,
            default_to_o_auth_authentication=True,
            allow_cross_tenant_replication=False,
            tags=args.tags,
            opts=child,
        )
        azure.storage.BlobServiceProperties(
            f"{name}-blob-service",
            account_name=self.account.name,
            resource_group_name=args.resource_group_name,
            blob_services_name="default",
            is_versioning_enabled=True,
            delete_retention_policy={"enabled": True, "days": 7},
            container_delete_retention_policy={"enabled": True, "days": 7},
            opts=child,
        )
        self.container: azure.storage.BlobContainer = azure.storage.BlobContainer(
            f"{name}-container",
            account_name=self.account.name,
            resource_group_name=args.resource_group_name,
            container_name=args.container_name,
            public_access=azure.storage.PublicAccess.NONE,
            opts=child,
        )
        if args.deletion_protection:
            azure.authorization.ManagementLockByScope(
                f"{name}-lock",
                scope=self.account.id,
                level="CanNotDelete",
                notes="OpsML artifacts; remove this lock to delete the storage account.",
                opts=child,
            )
        self.account_name: pulumi.Output[str] = self.account.name
        self.container_id: pulumi.Output[str] = self.container.id
        self.storage_uri: pulumi.Output[str] = self.container.name.apply(
            lambda c: make_storage_uri("az", c, args.prefix)
        )
        self.register_outputs(
            {
                "account_name": self.account_name,
                "container_id": self.container_id,
                "storage_uri": self.storage_uri,
            }
        )


@dataclass
class IdentityArgs:
    """A user-assigned identity the server's Kubernetes ServiceAccount federates to."""

    resource_group_name: pulumi.Input[str]
    location: str
    # The AKS cluster's OIDC issuer URL (az aks show --query oidcIssuerProfile.issuerUrl).
    oidc_issuer_url: pulumi.Input[str]
    storage_account_id: pulumi.Input[str]
    container_id: pulumi.Input[str]
    namespace: str
    service_account_name: str
    tags: dict[str, str] = field(default_factory=lambda: {"app": "opsml-server"})


class Identity(pulumi.ComponentResource):
    """Identity + federated credential; data rights on the container, delegation on the account.

    Scoping: Storage Blob Data Contributor is assigned on the container, the narrowest scope
    Azure offers for data actions. A user delegation key is requested from the account's blob
    service, so that action cannot be granted below the storage account: the built-in Storage
    Blob Delegator role (that one action, no data access) is assigned on the one account. A SAS
    signed with the key can never exceed the identity's own container-scoped data rights.
    """

    def __init__(
        self, name: str, args: IdentityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("opsml:azure:Identity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.identity: azure.managedidentity.UserAssignedIdentity = (
            azure.managedidentity.UserAssignedIdentity(
                f"{name}-identity",
                resource_group_name=args.resource_group_name,
                location=args.location,
                tags=args.tags,
                opts=child,
            )
        )
        azure.managedidentity.FederatedIdentityCredential(
            f"{name}-federation",
            resource_group_name=args.resource_group_name,
            resource_name_=self.identity.name,
            issuer=args.oidc_issuer_url,
            subject=f"system:serviceaccount:{args.namespace}:{args.service_account_name}",
            audiences=[WORKLOAD_IDENTITY_AUDIENCE],
            opts=child,
        )
        self.principal_id: pulumi.Output[str] = self.identity.principal_id
        for suffix, scope, role in (
            ("blob-data", args.container_id, STORAGE_BLOB_DATA_CONTRIBUTOR),
            ("delegator", args.storage_account_id, STORAGE_BLOB_DELEGATOR),
        ):
            azure.authorization.RoleAssignment(
                f"{name}-{suffix}",
                scope=scope,
                role_definition_id=pulumi.Output.from_input(scope).apply(
                    functools.partial(role_definition_id, role_guid=role)
                ),
                principal_id=self.principal_id,
                # Skips the directory lookup that fails for a freshly created identity.
                principal_type="ServicePrincipal",
                opts=child,
            )
        self.client_id: pulumi.Output[str] = self.identity.client_id
        self.tenant_id: pulumi.Output[str] = self.identity.tenant_id
        self.register_outputs(
            {
                "client_id": self.client_id,
                "tenant_id": self.tenant_id,
                "principal_id": self.principal_id,
            }
        )


def role_definition_id(scope: str, role_guid: str) -> str:
    """Subscription-level id of a built-in role, the subscription read from the scope's id."""
    parts = scope.strip("/").split("/")
    if len(parts) < 2 or parts[0].lower() != "subscriptions":
        raise ValueError(f"not a subscription-scoped resource id: {scope!r}")
    return (
        f"/subscriptions/{parts[1]}/providers/Microsoft.Authorization/roleDefinitions/{role_guid}"
    )
