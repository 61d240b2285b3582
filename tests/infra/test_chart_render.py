"""Cross-check: render the real chart with the values each program passes.

The values are taken from the Helm Release the program registered under mocks, so this proves
the whole chain: created resources -> values builder -> chart -> Deployment env/annotations.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import helm_python
import jsonschema
import pytest
import yaml
from opsml_infra.chart_values import TRACKING_SECRET_KEY

from .harness import PASSWORD, Run
from .stacks import CHART_DIR, CONFIGS, program_run, release_values

Doc = dict[str, Any]


@pytest.fixture(scope="module")
def chart() -> Iterator[helm_python.Chart]:
    loaded = helm_python.Chart.load(CHART_DIR)
    yield loaded
    loaded.close()


@pytest.fixture(params=["gcp", "aws", "azure"])
def cloud(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def run(cloud: str) -> Run:
    return program_run(cloud)


@pytest.fixture
def docs(chart: helm_python.Chart, run: Run) -> list[Doc]:
    release = run.one("kubernetes:helm.sh/v3:Release")
    out = chart.render(
        release_values(run), name=release.inputs["name"], namespace=release.inputs["namespace"]
    )
    return [
        doc
        for path, text in out.items()
        if path.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def _one(docs: list[Doc], kind: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {[d['metadata']['name'] for d in found]}"
    return found[0]


def _env(container: Doc) -> dict[str, Doc]:
    return {e["name"]: e for e in container.get("env", [])}


def _server(docs: list[Doc]) -> Doc:
    containers = _one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "server")


def test_values_match_the_chart_schema(run: Run) -> None:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    defaults = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    merged = _merge(defaults, release_values(run))
    jsonschema.validate(merged, schema)


def test_deployment_gets_the_wired_opsml_env(docs: list[Doc], run: Run) -> None:
    secret = run.one("kubernetes:core/v1:Secret")
    env = _env(_server(docs))
    assert env["OPSML_TRACKING_URI"]["valueFrom"]["secretKeyRef"] == {
        "name": secret.inputs["metadata"]["name"],
        "key": TRACKING_SECRET_KEY,
    }, f"{secret.urn}: Deployment does not read the tracking URI from this Secret"
    assert env["OPSML_STORAGE_URI"]["value"] == run.outputs["bucketUri"].value
    assert env["OPSML_POOL_SIZE"]["value"] == CONFIGS["gcp"]["poolSize"]
    assert env["OPSML_MAX_OVERFLOW"]["value"] == CONFIGS["gcp"]["maxOverflow"]


def test_migration_job_is_plain_and_reads_the_same_secret(docs: list[Doc], run: Run) -> None:
    job = _one(docs, "Job")
    assert "helm.sh/hook" not in (job["metadata"].get("annotations") or {}), "Job is a hook"
    secret = run.one("kubernetes:core/v1:Secret")
    [container] = job["spec"]["template"]["spec"]["containers"]
    ref = _env(container)["OPSML_TRACKING_URI"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": secret.inputs["metadata"]["name"], "key": TRACKING_SECRET_KEY}


def test_cloud_identity_reaches_the_pods(cloud: str, docs: list[Doc], run: Run) -> None:
    sas = [d for d in docs if d["kind"] == "ServiceAccount" and d["metadata"]["name"] == "opsml-sa"]
    assert len(sas) == 1, [d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"]
    sa = sas[0]
    pod = _one(docs, "Deployment")["spec"]["template"]
    assert pod["spec"]["serviceAccountName"] == "opsml-sa"
    annotations = sa["metadata"].get("annotations") or {}
    env = _env(_server(docs))
    if cloud == "gcp":
        email = run.one("gcp:serviceaccount/account:Account").state["email"]
        assert annotations["iam.gke.io/gcp-service-account"] == email
    elif cloud == "aws":
        arn = run.one("aws:iam/role:Role").state["arn"]
        assert annotations["eks.amazonaws.com/role-arn"] == arn
        assert env["AWS_REGION"]["value"] == CONFIGS["aws"]["region"]
    else:
        identity = run.one("azure-native:managedidentity:UserAssignedIdentity")
        account = run.one("azure-native:storage:StorageAccount")
        assert annotations["azure.workload.identity/client-id"] == identity.state["clientId"]
        assert annotations["azure.workload.identity/tenant-id"] == identity.state["tenantId"]
        assert pod["metadata"]["labels"]["azure.workload.identity/use"] == "true"
        assert env["AZURE_STORAGE_ACCOUNT_NAME"]["value"] == account.state["name"]


def test_service_matches_the_stack_output(docs: list[Doc], run: Run) -> None:
    service = _one(docs, "Service")
    assert service["metadata"]["name"] == run.outputs["serviceName"].value
    host = f"{service['metadata']['name']}.{service['metadata'].get('namespace', 'registry')}"
    assert run.outputs["serverUrl"].value == f"http://{host}.svc.cluster.local"
    assert service["spec"]["ports"][0]["port"] == 80


def test_no_password_in_rendered_manifests(docs: list[Doc]) -> None:
    assert PASSWORD not in yaml.safe_dump_all(docs)
    assert not [d for d in docs if d["kind"] == "Secret" and "OPSML_TRACKING_URI" in str(d)], (
        "the chart made its own tracking-URI Secret"
    )


def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        return {k: _merge(base.get(k), v) for k, v in override.items()} | {
            k: v for k, v in base.items() if k not in override
        }
    return override
