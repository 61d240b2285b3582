"""AWS program under mocks: private RDS reachable from the cluster only, private S3, IRSA."""

from __future__ import annotations

import json

import pytest

from .harness import Run, dig
from .stacks import CONFIGS, program_run

ISSUER = "oidc.eks.eu-west-1.amazonaws.com/id/ABC123"


@pytest.fixture(scope="module")
def run() -> Run:
    return program_run("aws")


def test_database_is_private(run: Run) -> None:
    db = run.one("aws:rds/instance:Instance")
    subnets = run.one("aws:rds/subnetGroup:SubnetGroup")
    sg = run.one("aws:ec2/securityGroup:SecurityGroup")
    assert db.inputs["publiclyAccessible"] is False, db.urn
    assert db.inputs["dbSubnetGroupName"] == subnets.state["name"], db.urn
    assert subnets.inputs["subnetIds"] == CONFIGS["aws"]["privateSubnetIds"], subnets.urn
    assert db.inputs["vpcSecurityGroupIds"] == [sg.id], db.urn
    assert db.inputs["storageEncrypted"] is True, db.urn


def test_database_protected_and_backed_up(run: Run) -> None:
    db = run.one("aws:rds/instance:Instance")
    assert db.inputs["deletionProtection"] is True, db.urn
    assert db.inputs["backupRetentionPeriod"] >= 1, db.urn
    assert db.inputs["skipFinalSnapshot"] is False, db.urn


def test_security_group_open_only_to_the_cluster(run: Run) -> None:
    sg = run.one("aws:ec2/securityGroup:SecurityGroup")
    assert not sg.inputs.get("ingress") and not sg.inputs.get("egress"), f"{sg.urn}: inline rules"
    rule = run.one("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert rule.inputs["securityGroupId"] == sg.id, rule.urn
    assert rule.inputs["referencedSecurityGroupId"] == CONFIGS["aws"]["clusterSecurityGroupId"]
    assert "cidrIpv4" not in rule.inputs and "cidrIpv6" not in rule.inputs, rule.urn
    assert (rule.inputs["fromPort"], rule.inputs["toPort"]) == (5432, 5432), rule.urn
    assert not run.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")


def test_bucket_blocks_public_access_and_is_encrypted_and_versioned(run: Run) -> None:
    bucket = run.one("aws:s3/bucket:Bucket")
    name = bucket.state["bucket"]
    block = run.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    for key in (
        "blockPublicAcls",
        "blockPublicPolicy",
        "ignorePublicAcls",
        "restrictPublicBuckets",
    ):
        assert block.inputs[key] is True, f"{block.urn}: {key} off"
    enc = run.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )
    assert dig(enc.inputs, "rules", 0, "applyServerSideEncryptionByDefault", "sseAlgorithm"), (
        enc.urn
    )
    ver = run.one("aws:s3/bucketVersioning:BucketVersioning")
    assert dig(ver.inputs, "versioningConfiguration", "status") == "Enabled", ver.urn
    own = run.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    assert dig(own.inputs, "rule", "objectOwnership") == "BucketOwnerEnforced", own.urn
    for res in (block, enc, ver, own):
        assert res.inputs["bucket"] == name, f"{res.urn}: applies to another bucket"


def test_bucket_policy_only_denies(run: Run) -> None:
    policy = run.one("aws:s3/bucketPolicy:BucketPolicy")
    doc = json.loads(policy.inputs["policy"])
    assert {s["Effect"] for s in doc["Statement"]} == {"Deny"}, f"{policy.urn}: grants access"


def test_irsa_trust_is_one_service_account(run: Run) -> None:
    role = run.one("aws:iam/role:Role")
    doc = json.loads(role.inputs["assumeRolePolicy"])
    [stmt] = doc["Statement"]
    assert stmt["Action"] == "sts:AssumeRoleWithWebIdentity", role.urn
    assert stmt["Principal"] == {"Federated": CONFIGS["aws"]["oidcProviderArn"]}, role.urn
    assert stmt["Condition"]["StringEquals"] == {
        f"{ISSUER}:sub": "system:serviceaccount:registry:opsml-sa",
        f"{ISSUER}:aud": "sts.amazonaws.com",
    }, role.urn
    assert not role.inputs.get("managedPolicyArns"), f"{role.urn}: managed policies attached"
    assert not run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")


def test_role_policy_scoped_to_the_bucket(run: Run) -> None:
    bucket_arn = run.one("aws:s3/bucket:Bucket").state["arn"]
    role = run.one("aws:iam/role:Role")
    policy = run.one("aws:iam/rolePolicy:RolePolicy")
    assert policy.inputs["role"] == role.id, policy.urn
    doc = json.loads(policy.inputs["policy"])
    for stmt in doc["Statement"]:
        assert stmt["Effect"] == "Allow", policy.urn
        assert all(a.startswith("s3:") and "*" not in a for a in stmt["Action"]), policy.urn
        assert stmt["Resource"] in ([bucket_arn], [f"{bucket_arn}/*"]), (
            f"{policy.urn}: resource {stmt['Resource']} outside the bucket"
        )


def test_explicit_provider_carries_the_region(run: Run) -> None:
    provider = run.one("pulumi:providers:aws")
    assert provider.inputs["region"] == "eu-west-1", provider.urn
