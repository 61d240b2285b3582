"""Azure program under mocks: private Flexible Server, private storage, scoped identity."""

from __future__ import annotations

import pytest
from opsml_infra.azure import (
    STORAGE_BLOB_DATA_CONTRIBUTOR,
    STORAGE_BLOB_DELEGATOR,
    WORKLOAD_IDENTITY_AUDIENCE,
)

from .harness import SUBSCRIPTION, Run, dig
from .stacks import CONFIGS, program_run


@pytest.fixture(scope="module")
def run() -> Run:
    return program_run("azure")


def test_database_has_private_access_only(run: Run) -> None:
    server = run.one("azure-native:dbforpostgresql:Server")
    net = server.inputs["network"]
    assert net["publicNetworkAccess"] == "Disabled", server.urn
    assert net["delegatedSubnetResourceId"] == CONFIGS["azure"]["dbSubnetId"], server.urn
    assert net["privateDnsZoneArmResourceId"] == CONFIGS["azure"]["privateDnsZoneId"], server.urn
    assert not run.of_type("azure-native:dbforpostgresql:FirewallRule")


def test_database_protected_and_backed_up(run: Run) -> None:
    server = run.one("azure-native:dbforpostgresql:Server")
    assert dig(server.inputs, "backup", "backupRetentionDays") >= 7, server.urn
    locks = {
        lock.inputs["scope"]: lock
        for lock in run.of_type("azure-native:authorization:ManagementLockByScope")
    }
    assert server.id in locks, f"{server.urn}: no delete lock"
    assert locks[server.id].inputs["level"] == "CanNotDelete", locks[server.id].urn


def test_storage_account_is_private(run: Run) -> None:
    account = run.one("azure-native:storage:StorageAccount")
    assert account.inputs["enableHttpsTrafficOnly"] is True, account.urn
    assert account.inputs["allowBlobPublicAccess"] is False, account.urn
    assert account.inputs["minimumTlsVersion"] == "TLS1_2", account.urn
    assert account.inputs["allowSharedKeyAccess"] is False, account.urn
    container = run.one("azure-native:storage:BlobContainer")
    assert container.inputs["publicAccess"] == "None", container.urn
    assert container.inputs["accountName"] == account.state["name"], container.urn
    blob = run.one("azure-native:storage:BlobServiceProperties")
    assert blob.inputs["isVersioningEnabled"] is True, blob.urn


def test_federated_credential_is_the_one_service_account(run: Run) -> None:
    identity = run.one("azure-native:managedidentity:UserAssignedIdentity")
    fic = run.one("azure-native:managedidentity:FederatedIdentityCredential")
    assert fic.inputs["resourceName"] == identity.state["name"], fic.urn
    assert fic.inputs["issuer"] == CONFIGS["azure"]["oidcIssuerUrl"], fic.urn
    assert fic.inputs["subject"] == "system:serviceaccount:registry:opsml-sa", fic.urn
    assert fic.inputs["audiences"] == [WORKLOAD_IDENTITY_AUDIENCE], fic.urn


def test_role_assignments_scoped_to_container_and_account(run: Run) -> None:
    identity = run.one("azure-native:managedidentity:UserAssignedIdentity")
    account = run.one("azure-native:storage:StorageAccount")
    container = run.one("azure-native:storage:BlobContainer")
    roles = {
        ra.inputs["roleDefinitionId"].rsplit("/", 1)[-1]: ra
        for ra in run.of_type("azure-native:authorization:RoleAssignment")
    }
    assert set(roles) == {STORAGE_BLOB_DATA_CONTRIBUTOR, STORAGE_BLOB_DELEGATOR}, roles
    data = roles[STORAGE_BLOB_DATA_CONTRIBUTOR]
    assert data.inputs["scope"] == container.id, f"{data.urn}: data role wider than container"
    delegator = roles[STORAGE_BLOB_DELEGATOR]
    assert delegator.inputs["scope"] == account.id, f"{delegator.urn}: not the one account"
    for ra in roles.values():
        assert ra.inputs["principalId"] == identity.state["principalId"], ra.urn
        assert ra.inputs["roleDefinitionId"].startswith(f"/subscriptions/{SUBSCRIPTION}/"), ra.urn
