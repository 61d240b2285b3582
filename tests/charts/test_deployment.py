"""Server Deployment wiring: command, env and its sources, Secrets, checksums, image refs."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.charts.conftest import FULLNAME, Rendered, RenderFactory, containers, env_of

PROD_COMMAND = [
    "gunicorn",
    "-k",
    "uvicorn_worker.UvicornWorker",
    "--config=python:app.gunicorn_conf",
    "--bind=0.0.0.0:3000",
]


def _server(rendered: Rendered) -> dict[str, Any]:
    return containers(rendered.deployment["spec"]["template"]["spec"])["server"]


def _secret_ref(env: dict[str, dict[str, Any]], name: str) -> tuple[str, str]:
    ref = env[name]["valueFrom"]["secretKeyRef"]
    return ref["name"], ref["key"]


def test_production_command_without_login(render: RenderFactory) -> None:
    server = _server(render("minimal"))
    assert server["command"] == [*PROD_COMMAND, "app.main:run_app(login=False)"]


def test_auth_switches_the_command_to_login_and_wires_credentials(render: RenderFactory) -> None:
    server = _server(render("minimal", {"auth": {"enabled": True, "existingSecret": "auth"}}))
    assert server["command"][-1] == "app.main:run_app(login=True)"
    env = env_of(server)
    assert _secret_ref(env, "OPSML_USERNAME") == ("auth", "OPSML_USERNAME")
    assert _secret_ref(env, "OPSML_PASSWORD") == ("auth", "OPSML_PASSWORD")
    assert "OPSML_PROD_TOKEN" not in env
    assert env["APP_ENV"]["value"] == "development"


def test_existing_secrets_and_custom_keys(render: RenderFactory) -> None:
    rendered = render(
        "minimal",
        {
            "database": {"existingSecret": "db", "existingSecretKey": "uri"},
            "auth": {
                "enabled": True,
                "appEnv": "production",
                "existingSecret": "auth",
                "usernameKey": "user",
                "passwordKey": "pass",
                "prodTokenKey": "token",
            },
        },
    )
    env = env_of(_server(rendered))
    assert _secret_ref(env, "OPSML_TRACKING_URI") == ("db", "uri")
    assert _secret_ref(env, "OPSML_USERNAME") == ("auth", "user")
    assert _secret_ref(env, "OPSML_PASSWORD") == ("auth", "pass")
    assert _secret_ref(env, "OPSML_PROD_TOKEN") == ("auth", "token")
    assert env["APP_ENV"]["value"] == "production"
    # Nothing to make: every secret value comes from an existing Secret.
    assert rendered.all("Secret") == []


def test_plain_settings(render: RenderFactory) -> None:
    env = env_of(
        _server(
            render(
                "minimal", {"database": {"poolSize": 7, "maxOverflow": 3}, "server": {"workers": 5}}
            )
        )
    )
    assert env["OPSML_STORAGE_URI"] == {
        "name": "OPSML_STORAGE_URI",
        "value": "s3://opsml-artifacts/registry",
    }
    assert env["OPSML_POOL_SIZE"]["value"] == "7"
    assert env["OPSML_MAX_OVERFLOW"]["value"] == "3"
    assert env["WEB_CONCURRENCY"]["value"] == "5"
    assert env["PORT"]["value"] == "3000"


def test_quick_start_secret_from_values(render: RenderFactory) -> None:
    rendered = render("full")
    secret = rendered.one("Secret", FULLNAME)
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data == {
        "OPSML_TRACKING_URI": "postgresql+pg8000://opsml:s3cret@127.0.0.1:5432/opsml",
        "OPSML_USERNAME": "admin",
        "OPSML_PASSWORD": "change-me",
        "OPSML_PROD_TOKEN": "prod-token",
    }
    env = env_of(_server(rendered))
    for name in data:
        assert _secret_ref(env, name) == (FULLNAME, name)
    # The secret never shows up as a plain value anywhere in the Deployment.
    assert "s3cret" not in str(rendered.deployment)


def test_extra_env_and_env_from(render: RenderFactory) -> None:
    server = _server(render("full"))
    assert env_of(server)["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"]["value"] == "false"
    assert server["envFrom"] == [{"configMapRef": {"name": "opsml-extra"}}]


def test_config_changes_roll_the_pods(render: RenderFactory) -> None:
    def checksums(overrides: dict[str, Any]) -> dict[str, str]:
        annotations = render("full", overrides).deployment["spec"]["template"]["metadata"][
            "annotations"
        ]
        return {k: v for k, v in annotations.items() if k.startswith("checksum/")}

    base = checksums({})
    assert set(base) == {"checksum/secret", "checksum/config"}
    new_password = checksums({"auth": {"password": "rotated"}})
    assert new_password["checksum/secret"] != base["checksum/secret"]
    new_pool = checksums({"database": {"poolSize": 9}})
    assert new_pool["checksum/config"] != base["checksum/config"]
    assert new_pool["checksum/secret"] == base["checksum/secret"]
    assert checksums({"replicaCount": 5}) == base


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ({}, "ghcr.io/ml-platform/opsml-server:0.1.0"),
        ({"tag": "1.2.3"}, "ghcr.io/ml-platform/opsml-server:1.2.3"),
        (
            {"tag": "1.2.3", "digest": "sha256:" + "a" * 64},
            "ghcr.io/ml-platform/opsml-server@sha256:" + "a" * 64,
        ),
    ],
)
def test_image_by_tag_or_digest(
    render: RenderFactory, image: dict[str, str], expected: str
) -> None:
    rendered = render("minimal", {"image": image})
    assert _server(rendered)["image"] == expected
    job_pod = rendered.migration_job["spec"]["template"]["spec"]
    assert containers(job_pod)["migrate"]["image"] == expected
    assert containers(rendered.one("Pod")["spec"])["readyz"]["image"] == expected


def test_termination_grace_outlasts_gunicorn(render: RenderFactory) -> None:
    pod = render("minimal", {"server": {"gracefulTimeout": 60}}).deployment["spec"]["template"][
        "spec"
    ]
    assert pod["terminationGracePeriodSeconds"] == 70


def test_replicas_or_hpa(render: RenderFactory) -> None:
    plain = render("minimal", {"replicaCount": 3})
    assert plain.deployment["spec"]["replicas"] == 3
    assert plain.all("HorizontalPodAutoscaler") == []
    scaled = render("full")
    assert "replicas" not in scaled.deployment["spec"]
    hpa = scaled.one("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == FULLNAME
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    assert {m["resource"]["name"] for m in hpa["spec"]["metrics"]} == {"cpu", "memory"}


def test_optional_objects_follow_their_switches(render: RenderFactory) -> None:
    minimal = render("minimal")
    assert {"Ingress", "HTTPRoute", "ServiceMonitor", "HorizontalPodAutoscaler"}.isdisjoint(
        minimal.kinds()
    )
    assert minimal.one("PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    full = render("full")
    ingress = full.one("Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [{"secretName": "opsml-tls", "hosts": ["opsml.example.com"]}]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend == {"service": {"name": FULLNAME, "port": {"name": "http"}}}
    route = full.one("HTTPRoute")
    assert route["spec"]["parentRefs"][0]["name"] == "shared-gateway"
    assert route["spec"]["rules"][0]["backendRefs"] == [{"name": FULLNAME, "port": 80}]
    monitor = full.one("ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    assert monitor["spec"]["endpoints"][0]["port"] == "http"


def test_network_policy_admits_only_the_server_port(render: RenderFactory) -> None:
    policies = {p["metadata"]["name"]: p for p in render("minimal").all("NetworkPolicy")}
    deny = policies[f"{FULLNAME}-default-deny"]["spec"]
    assert deny["policyTypes"] == ["Ingress"]
    assert "ingress" not in deny
    allow = policies[FULLNAME]["spec"]
    assert allow["policyTypes"] == ["Ingress"]
    assert allow["ingress"] == [{"ports": [{"port": "http", "protocol": "TCP"}]}]


def test_network_policy_with_sources_and_egress(render: RenderFactory) -> None:
    allow = render("full").one("NetworkPolicy", FULLNAME)["spec"]
    assert allow["policyTypes"] == ["Ingress", "Egress"]
    sources = allow["ingress"][0]["from"]
    assert len(sources) == 3  # two from values plus the chart's own test pod
    assert sources[-1]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "test"
    egress_ports = [p["port"] for rule in allow["egress"] for p in rule["ports"]]
    assert egress_ports == [53, 53, 443]


def test_helm_test_pod_gets_readyz_with_python(render: RenderFactory) -> None:
    pod = render("minimal").one("Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    test = containers(pod["spec"])["readyz"]
    assert test["command"][:2] == ["python", "-c"]
    assert f"http://{FULLNAME}:80/readyz" in test["command"][2]
    assert "curl" not in str(test)
    compile(test["command"][2], "<helm-test>", "exec")  # the inline script is valid Python
