"""Every cloud's program, run under mocks: wiring, secrets, component conventions."""

from __future__ import annotations

import pytest
from opsml_infra.chart_values import TRACKING_SECRET_KEY
from opsml_infra.uris import format_tracking_uri

from .harness import PASSWORD, Run, dig, is_secret_input, unwrap, walk_strings
from .stacks import CONFIGS, KUBECONFIG, program_run, release_values

CLOUDS = ["gcp", "aws", "azure"]

# Per cloud: (database resource type, output holding its host), bucket type, identity type.
DB = {
    "gcp": ("gcp:sql/databaseInstance:DatabaseInstance", "privateIpAddress"),
    "aws": ("aws:rds/instance:Instance", "address"),
    "azure": ("azure-native:dbforpostgresql:Server", "fullyQualifiedDomainName"),
}


@pytest.fixture(params=CLOUDS)
def cloud(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def run(cloud: str) -> Run:
    return program_run(cloud)


def _expected_storage_uri(cloud: str, run: Run) -> str:
    if cloud == "gcp":
        bucket = run.one("gcp:storage/bucket:Bucket")
        return f"gs://{bucket.state['name']}/opsml"
    if cloud == "aws":
        bucket = run.one("aws:s3/bucket:Bucket")
        return f"s3://{bucket.state['bucket']}/opsml"
    container = run.one("azure-native:storage:BlobContainer")
    return f"az://{container.state['name']}/opsml"


def _expected_db_name(cloud: str, run: Run) -> str:
    if cloud == "gcp":
        return str(run.one("gcp:sql/database:Database").state["name"])
    if cloud == "aws":
        return str(run.one("aws:rds/instance:Instance").state["dbName"])
    return str(run.one("azure-native:dbforpostgresql:Database").state["name"])


def test_tracking_uri_secret_holds_the_created_database(cloud: str, run: Run) -> None:
    db_type, host_key = DB[cloud]
    db = run.one(db_type)
    password = run.one("random:index/randomPassword:RandomPassword")
    secret = run.one("kubernetes:core/v1:Secret")
    expected = format_tracking_uri(
        "opsml", password.state["result"], db.state[host_key], _expected_db_name(cloud, run)
    )
    string_data = secret.inputs["stringData"]
    assert is_secret_input(string_data), f"{secret.urn}: stringData is not a secret input"
    assert unwrap(string_data) == {TRACKING_SECRET_KEY: expected}, secret.urn
    assert secret.inputs["metadata"]["namespace"] == "registry", secret.urn


def test_database_password_is_the_generated_one_and_secret(cloud: str, run: Run) -> None:
    db_type, _ = DB[cloud]
    db = run.one(db_type)
    field = {
        "gcp": None,  # the password sits on the sql User, checked below
        "aws": "password",
        "azure": "administratorLoginPassword",
    }[cloud]
    holder = run.one("gcp:sql/user:User") if cloud == "gcp" else db
    value = holder.inputs["password" if field is None else field]
    assert is_secret_input(value), f"{holder.urn}: password is not a secret input"
    assert unwrap(value) == PASSWORD, holder.urn


def test_chart_values_come_from_the_resources(cloud: str, run: Run) -> None:
    values = release_values(run)
    release = run.one("kubernetes:helm.sh/v3:Release")
    secret = run.one("kubernetes:core/v1:Secret")
    assert values["storage"]["uri"] == _expected_storage_uri(cloud, run), release.urn
    assert values["database"] == {
        "existingSecret": secret.inputs["metadata"]["name"],
        "existingSecretKey": TRACKING_SECRET_KEY,
        "poolSize": 7,
        "maxOverflow": 3,
    }, release.urn
    assert values["cloud"]["preset"] == cloud, release.urn
    assert values["serviceAccount"] == {"create": True, "name": "opsml-sa"}, release.urn
    assert release.inputs["namespace"] == "registry", release.urn
    assert release.inputs["chart"] == CONFIGS[cloud]["chartPath"], release.urn


def test_cloud_credentials_come_from_the_identity(cloud: str, run: Run) -> None:
    values = release_values(run)
    release = run.one("kubernetes:helm.sh/v3:Release")
    if cloud == "gcp":
        account = run.one("gcp:serviceaccount/account:Account")
        assert values["cloud"]["gcp"] == {"serviceAccount": account.state["email"]}, release.urn
    elif cloud == "aws":
        role = run.one("aws:iam/role:Role")
        assert values["cloud"]["aws"] == {
            "roleArn": role.state["arn"],
            "region": CONFIGS["aws"]["region"],
        }, release.urn
    else:
        identity = run.one("azure-native:managedidentity:UserAssignedIdentity")
        account = run.one("azure-native:storage:StorageAccount")
        assert values["cloud"]["azure"] == {
            "clientId": identity.state["clientId"],
            "tenantId": identity.state["tenantId"],
            "storageAccountName": account.state["name"],
        }, release.urn


def test_chart_values_hold_no_secret(cloud: str, run: Run) -> None:
    release = run.one("kubernetes:helm.sh/v3:Release")
    strings = walk_strings(release.inputs)
    assert not any(PASSWORD in s for s in strings), f"{release.urn}: password in chart values"
    assert "trackingUri" not in release.inputs["values"].get("database", {}), release.urn


def test_kubeconfig_stays_secret(cloud: str, run: Run) -> None:
    provider = run.one("pulumi:providers:kubernetes")
    assert is_secret_input(provider.inputs["kubeconfig"]), f"{provider.urn}: kubeconfig plain"
    assert unwrap(provider.inputs["kubeconfig"]) == KUBECONFIG, provider.urn
    # Every Kubernetes resource goes through that explicit provider, never an ambient one.
    for res in run.resources:
        if res.type.startswith("kubernetes:"):
            assert "opsml:app:App$" in res.urn, f"{res.urn}: Kubernetes resource outside the App"


def test_stack_outputs(cloud: str, run: Run) -> None:
    out = run.outputs
    db_type, host_key = DB[cloud]
    assert out["trackingUri"].secret, "trackingUri stack output must be secret"
    assert PASSWORD in out["trackingUri"].value
    for key in ("serverUrl", "serviceName", "namespace", "bucketUri", "databaseHost", "identity"):
        assert key in out, f"missing stack output {key}"
        assert not out[key].secret, f"stack output {key} needlessly secret"
        assert PASSWORD not in str(out[key].value), f"password leaked into output {key}"
    assert out["serverUrl"].value == "http://opsml-server.registry.svc.cluster.local"
    assert out["serviceName"].value == "opsml-server"
    assert out["bucketUri"].value == _expected_storage_uri(cloud, run)
    assert out["databaseHost"].value == run.one(db_type).state[host_key]


def test_nothing_is_open_to_the_internet(cloud: str, run: Run) -> None:
    for res in run.resources:
        for s in walk_strings(res.inputs):
            assert "0.0.0.0/0" not in s and "::/0" not in s, f"{res.urn} opens {s!r}"


def test_component_conventions(cloud: str, run: Run) -> None:
    components = [r for r in run.resources if r.type.startswith("opsml:")]
    tokens = {r.type for r in components}
    module = cloud
    assert tokens == {
        f"opsml:{module}:Database",
        f"opsml:{module}:Bucket",
        f"opsml:{module}:Identity",
        "opsml:app:App",
    }, tokens
    names_by_type = {r.type: r.name for r in components}
    for res in run.resources:
        if (
            res.type.startswith(("opsml:", "pulumi:providers:"))
            and "opsml:" not in res.urn.split("::")[2].rsplit("$", 1)[0]
        ):
            continue  # the components themselves and the program's own providers
        parent_type = res.urn.split("::")[2].rsplit("$", 1)[0].split("$")[-1]
        assert parent_type in names_by_type, f"{res.urn}: not a child of a component"
        prefix = names_by_type[parent_type] + "-"
        assert res.name.startswith(prefix), f"{res.urn}: child name lacks prefix {prefix!r}"


def test_settings_and_names_are_plain_strings(cloud: str, run: Run) -> None:
    # A stray Output repr in a value ("<pulumi.output.Output ...>") means a missed apply.
    for res in run.resources:
        for s in walk_strings(res.inputs):
            assert "pulumi.output" not in s and "Calling __str__" not in s, f"{res.urn}: {s!r}"


def test_release_waits_for_the_migration_job(cloud: str, run: Run) -> None:
    release = run.one("kubernetes:helm.sh/v3:Release")
    assert release.inputs["waitForJobs"] is True, release.urn
    assert dig(release.inputs, "values", "migrations", "useHelmHooks") is False, release.urn
