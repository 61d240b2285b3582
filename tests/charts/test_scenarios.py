"""Every named scenario renders, lints clean and carries the basics: probes, resources, security."""

from __future__ import annotations

import helm_python
import pytest

from tests.charts.conftest import (
    CHART_DIR,
    FULLNAME,
    NAMESPACE,
    SCENARIOS,
    RenderFactory,
    containers,
    env_of,
    scenario_values,
)

EXPECTED_SCENARIOS = {"minimal", "gcp", "aws", "azure", "full"}


def test_the_scenarios_are_all_there() -> None:
    assert set(SCENARIOS) >= EXPECTED_SCENARIOS


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_lint_strict_has_no_findings(scenario: str) -> None:
    report = helm_python.lint(
        CHART_DIR, scenario_values(scenario), strict=True, namespace=NAMESPACE
    )
    assert report["messages"] == [], report
    assert report["errors"] == [], report


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_object_is_namespaced_and_labelled(render: RenderFactory, scenario: str) -> None:
    for doc in render(scenario).docs:
        meta = doc["metadata"]
        assert meta["namespace"] == NAMESPACE, doc["kind"]
        assert meta["labels"]["app.kubernetes.io/instance"] == "opsml", doc["kind"]
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "Helm", doc["kind"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_pod_is_locked_down(render: RenderFactory, scenario: str) -> None:
    rendered = render(scenario)
    pods = [
        rendered.deployment["spec"]["template"]["spec"],
        rendered.migration_job["spec"]["template"]["spec"],
        rendered.one("Pod")["spec"],
    ]
    for pod in pods:
        assert pod["automountServiceAccountToken"] is False
        psc = pod["securityContext"]
        assert psc["runAsNonRoot"] is True
        assert psc["runAsUser"] > 0
        assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
        every = [*containers(pod).values(), *containers(pod, init=True).values()]
        assert every
        for c in every:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, c["name"]
            assert sc["readOnlyRootFilesystem"] is True, c["name"]
            assert sc["runAsNonRoot"] is True, c["name"]
            assert sc["capabilities"]["drop"] == ["ALL"], c["name"]
            assert "add" not in sc["capabilities"], c["name"]
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, c["name"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][kind]), (c["name"], kind)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_server_probes_port_and_tmp(render: RenderFactory, scenario: str) -> None:
    pod = render(scenario).deployment["spec"]["template"]["spec"]
    server = containers(pod)["server"]
    assert server["ports"] == [{"name": "http", "containerPort": 3000, "protocol": "TCP"}]
    assert server["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert server["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert server["startupProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    mounts = {m["mountPath"]: m["name"] for m in server["volumeMounts"]}
    assert mounts["/tmp"] == "tmp"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes["tmp"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_tracking_uri_only_ever_comes_from_a_secret(render: RenderFactory, scenario: str) -> None:
    rendered = render(scenario)
    for pod in (
        rendered.deployment["spec"]["template"]["spec"],
        rendered.migration_job["spec"]["template"]["spec"],
    ):
        main = next(iter(containers(pod).values()))
        uri = env_of(main)["OPSML_TRACKING_URI"]
        assert "value" not in uri
        assert set(uri["valueFrom"]) == {"secretKeyRef"}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_service_targets_the_server_port(render: RenderFactory, scenario: str) -> None:
    rendered = render(scenario)
    service = rendered.one("Service")
    assert service["metadata"]["name"] == FULLNAME
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    selector = service["spec"]["selector"]
    pod_labels = rendered.deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()
    assert "app.kubernetes.io/version" not in selector
    assert "app.kubernetes.io/version" not in rendered.deployment["spec"]["selector"]["matchLabels"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_notes_say_how_to_reach_and_check_the_server(render: RenderFactory, scenario: str) -> None:
    notes = render(scenario).notes
    assert f"port-forward svc/{FULLNAME}" in notes
    assert "/readyz" in notes
    assert "/livez" in notes
    assert "helm test opsml" in notes
