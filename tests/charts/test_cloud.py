"""Cloud presets: identity annotations, pod labels, env and the Cloud SQL Auth Proxy."""

from __future__ import annotations

from typing import Any

import helm_python
import pytest

from tests.charts.conftest import (
    FULLNAME,
    Rendered,
    RenderFactory,
    containers,
    env_of,
)

IDENTITY_ANNOTATIONS = {
    "iam.gke.io/gcp-service-account",
    "eks.amazonaws.com/role-arn",
    "azure.workload.identity/client-id",
    "azure.workload.identity/tenant-id",
}


def _sa(rendered: Rendered) -> dict[str, Any]:
    return rendered.one("ServiceAccount", FULLNAME)


def _identity(rendered: Rendered) -> dict[str, str]:
    annotations = _sa(rendered)["metadata"].get("annotations", {})
    return {k: v for k, v in annotations.items() if k in IDENTITY_ANNOTATIONS}


def _server_pod(rendered: Rendered) -> dict[str, Any]:
    template: dict[str, Any] = rendered.deployment["spec"]["template"]
    return template


def test_none_has_no_cloud_identity(render: RenderFactory) -> None:
    rendered = render("minimal")
    assert _identity(rendered) == {}
    assert "azure.workload.identity/use" not in _server_pod(rendered)["metadata"]["labels"]
    env = env_of(containers(_server_pod(rendered)["spec"])["server"])
    assert {
        "AWS_REGION",
        "AZURE_STORAGE_ACCOUNT_NAME",
        "GOOGLE_APPLICATION_CREDENTIALS_SA",
    }.isdisjoint(env)


def test_gcp_workload_identity(render: RenderFactory) -> None:
    rendered = render("gcp")
    assert _identity(rendered) == {
        "iam.gke.io/gcp-service-account": "opsml-server@my-project.iam.gserviceaccount.com"
    }
    # GKE WI answers through the node's metadata server: no API token needed.
    assert _sa(rendered)["automountServiceAccountToken"] is False
    pod = _server_pod(rendered)["spec"]
    assert pod["serviceAccountName"] == FULLNAME
    assert pod["automountServiceAccountToken"] is False
    env = env_of(containers(pod)["server"])
    assert env["OPSML_TRACKING_URI"]["valueFrom"]["secretKeyRef"] == {
        "name": "opsml-database",
        "key": "tracking-uri",
    }
    assert env["OPSML_STORAGE_URI"]["value"] == "gs://my-project-opsml/registry"
    assert "GOOGLE_APPLICATION_CREDENTIALS_SA" not in env


def test_gcp_proxy_is_a_native_sidecar_by_default(render: RenderFactory) -> None:
    pod = _server_pod(render("gcp"))["spec"]
    assert set(containers(pod)) == {"server"}
    proxy = containers(pod, init=True)["cloud-sql-proxy"]
    assert proxy["restartPolicy"] == "Always"
    assert proxy["image"] == "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.14.3"
    assert proxy["args"][-1] == "my-project:europe-west1:opsml"
    assert "--private-ip" in proxy["args"]
    assert "--port=5432" in proxy["args"]
    assert "--address=127.0.0.1" in proxy["args"]
    assert "--quitquitquit" not in proxy["args"]
    assert proxy["startupProbe"]["httpGet"]["path"] == "/startup"


def test_gcp_proxy_as_plain_container(render: RenderFactory) -> None:
    rendered = render("gcp", {"cloud": {"gcp": {"cloudSqlProxy": {"nativeSidecar": False}}}})
    pod = _server_pod(rendered)["spec"]
    assert "initContainers" not in pod
    proxy = containers(pod)["cloud-sql-proxy"]
    assert "restartPolicy" not in proxy
    # In the server pod the proxy lives as long as the pod: no admin endpoint.
    assert "--quitquitquit" not in proxy["args"]


def test_gcp_mounted_key(render: RenderFactory) -> None:
    rendered = render("full")
    pod = _server_pod(rendered)["spec"]
    server = containers(pod)["server"]
    env = env_of(server)
    assert env["GOOGLE_APPLICATION_CREDENTIALS_SA"]["value"] == "/var/run/secrets/opsml/gcp/sa.json"
    mounts = {m["name"]: m for m in server["volumeMounts"]}
    assert mounts["gcp-key"] == {
        "name": "gcp-key",
        "mountPath": "/var/run/secrets/opsml/gcp",
        "readOnly": True,
    }
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["gcp-key"]["secret"]["secretName"] == "opsml-gcp-key"
    proxy = containers(pod)["cloud-sql-proxy"]
    assert "--credentials-file=/var/run/secrets/opsml/gcp/sa.json" in proxy["args"]
    assert "--auto-iam-authn" in proxy["args"]
    assert proxy["image"].endswith("@sha256:" + "fedcba9876543210" * 4)
    # No Workload Identity configured: no annotation.
    assert _identity(rendered) == {}


def test_native_sidecar_refused_on_clusters_before_1_29(render: RenderFactory) -> None:
    with pytest.raises(
        helm_python.HelmRenderError, match=r"nativeSidecar needs Kubernetes >= 1.29"
    ):
        render("gcp", kube_version="v1.28.0")
    plain = render(
        "gcp",
        {"cloud": {"gcp": {"cloudSqlProxy": {"nativeSidecar": False}}}},
        kube_version="v1.28.0",
    )
    assert "cloud-sql-proxy" in containers(_server_pod(plain)["spec"])
    native = render("gcp", kube_version="v1.29.0")
    assert "cloud-sql-proxy" in containers(_server_pod(native)["spec"], init=True)


def test_aws_irsa(render: RenderFactory) -> None:
    rendered = render("aws")
    assert _identity(rendered) == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/opsml-server"
    }
    # IRSA's webhook mounts its own projected token (aws-iam-token): no API token needed.
    assert _sa(rendered)["automountServiceAccountToken"] is False
    env = env_of(containers(_server_pod(rendered)["spec"])["server"])
    assert env["AWS_REGION"] == {"name": "AWS_REGION", "value": "eu-west-1"}
    assert env["OPSML_STORAGE_URI"]["value"].startswith("s3://")
    assert "azure.workload.identity/use" not in _server_pod(rendered)["metadata"]["labels"]


def test_azure_workload_identity(render: RenderFactory) -> None:
    rendered = render("azure")
    assert _identity(rendered) == {
        "azure.workload.identity/client-id": "00000000-1111-2222-3333-444444444444",
        "azure.workload.identity/tenant-id": "55555555-6666-7777-8888-999999999999",
    }
    # Azure WI's webhook projects its own azure-identity-token volume: no API token needed.
    assert _sa(rendered)["automountServiceAccountToken"] is False
    for pod in (_server_pod(rendered), rendered.migration_job["spec"]["template"]):
        assert pod["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    env = env_of(containers(_server_pod(rendered)["spec"])["server"])
    assert env["AZURE_STORAGE_ACCOUNT_NAME"]["value"] == "opsmlartifacts"
    assert env["OPSML_USERNAME"]["valueFrom"]["secretKeyRef"]["name"] == "opsml-auth"
    assert containers(_server_pod(rendered)["spec"])["server"]["command"][-1] == (
        "app.main:run_app(login=True)"
    )


@pytest.mark.parametrize("scenario", ["gcp", "aws", "azure"])
def test_identity_can_be_forced_to_mount_the_token(render: RenderFactory, scenario: str) -> None:
    rendered = render(scenario, {"serviceAccount": {"automountToken": True}})
    assert _sa(rendered)["automountServiceAccountToken"] is True
    assert _server_pod(rendered)["spec"]["automountServiceAccountToken"] is True


def test_settings_of_other_clouds_are_ignored(render: RenderFactory) -> None:
    rendered = render(
        "aws",
        {
            "cloud": {
                "gcp": {"serviceAccount": "x@p.iam.gserviceaccount.com"},
                "azure": {"storageAccountName": "acct"},
            }
        },
    )
    assert set(_identity(rendered)) == {"eks.amazonaws.com/role-arn"}
    env = env_of(containers(_server_pod(rendered)["spec"])["server"])
    assert "AZURE_STORAGE_ACCOUNT_NAME" not in env
