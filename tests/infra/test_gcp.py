"""GCP program under mocks: private database, private bucket, identity scoped to the bucket."""

from __future__ import annotations

import pytest

from .harness import Run, dig
from .stacks import CONFIGS, program_run

PROJECT = CONFIGS["gcp"]["gcpProject"]


@pytest.fixture(scope="module")
def run() -> Run:
    return program_run("gcp")


def test_database_is_private_ip_only(run: Run) -> None:
    db = run.one("gcp:sql/databaseInstance:DatabaseInstance")
    ip = dig(db.inputs, "settings", "ipConfiguration")
    assert ip["ipv4Enabled"] is False, f"{db.urn}: public IPv4 enabled"
    assert ip["privateNetwork"] == CONFIGS["gcp"]["network"], db.urn
    assert not ip.get("authorizedNetworks"), f"{db.urn}: authorized networks open"
    assert ip["sslMode"] == "ENCRYPTED_ONLY", db.urn


def test_database_protected_and_backed_up(run: Run) -> None:
    db = run.one("gcp:sql/databaseInstance:DatabaseInstance")
    assert db.inputs["deletionProtection"] is True, db.urn
    assert dig(db.inputs, "settings", "deletionProtectionEnabled") is True, db.urn
    backup = dig(db.inputs, "settings", "backupConfiguration")
    assert backup["enabled"] is True and backup["pointInTimeRecoveryEnabled"] is True, db.urn


def test_private_service_access_is_peered(run: Run) -> None:
    rng = run.one("gcp:compute/globalAddress:GlobalAddress")
    assert rng.inputs["purpose"] == "VPC_PEERING", rng.urn
    assert rng.inputs["addressType"] == "INTERNAL", rng.urn
    conn = run.one("gcp:servicenetworking/connection:Connection")
    assert conn.inputs["reservedPeeringRanges"] == [rng.state["name"]], conn.urn


def test_bucket_is_private_and_versioned(run: Run) -> None:
    bucket = run.one("gcp:storage/bucket:Bucket")
    assert bucket.inputs["uniformBucketLevelAccess"] is True, bucket.urn
    assert bucket.inputs["publicAccessPrevention"] == "enforced", bucket.urn
    assert dig(bucket.inputs, "versioning", "enabled") is True, bucket.urn
    assert bucket.inputs["forceDestroy"] is False, bucket.urn


def test_storage_rights_only_on_the_one_bucket(run: Run) -> None:
    bucket = run.one("gcp:storage/bucket:Bucket")
    email = run.one("gcp:serviceaccount/account:Account").state["email"]
    bindings = run.of_type("gcp:storage/bucketIAMMember:BucketIAMMember")
    assert {b.inputs["role"] for b in bindings} == {
        "roles/storage.objectAdmin",
        "roles/storage.legacyBucketReader",
    }
    for b in bindings:
        assert b.inputs["bucket"] == bucket.state["name"], f"{b.urn}: not the OpsML bucket"
        assert b.inputs["member"] == f"serviceAccount:{email}", b.urn
    # No storage role anywhere at project level (and nothing else with a project scope but
    # the instance-scoped Cloud SQL client).
    project_bindings = run.of_type("gcp:projects/iAMMember:IAMMember")
    assert [b.inputs["role"] for b in project_bindings] == ["roles/cloudsql.client"], [
        b.urn for b in project_bindings
    ]


def test_cloudsql_client_is_conditioned_on_the_instance(run: Run) -> None:
    binding = run.one("gcp:projects/iAMMember:IAMMember")
    instance = run.one("gcp:sql/databaseInstance:DatabaseInstance")
    expression = dig(binding.inputs, "condition", "expression")
    assert f'"projects/{PROJECT}/instances/{instance.state["name"]}"' in expression, binding.urn


def test_workload_identity_and_self_token_creator(run: Run) -> None:
    account = run.one("gcp:serviceaccount/account:Account")
    email = account.state["email"]
    by_role = {b.inputs["role"]: b for b in run.of_type("gcp:serviceaccount/iAMMember:IAMMember")}
    assert set(by_role) == {
        "roles/iam.workloadIdentityUser",
        "roles/iam.serviceAccountTokenCreator",
    }
    wi = by_role["roles/iam.workloadIdentityUser"]
    assert wi.inputs["member"] == f"serviceAccount:{PROJECT}.svc.id.goog[registry/opsml-sa]", wi.urn
    signer = by_role["roles/iam.serviceAccountTokenCreator"]
    assert signer.inputs["member"] == f"serviceAccount:{email}", f"{signer.urn}: not self only"
    for b in by_role.values():
        assert b.inputs["serviceAccountId"] == account.state["name"], f"{b.urn}: other account"


def test_explicit_provider_carries_project_and_region(run: Run) -> None:
    provider = run.one("pulumi:providers:gcp")
    assert provider.inputs["project"] == PROJECT, provider.urn
    assert provider.inputs["region"] == "europe-west1", provider.urn
