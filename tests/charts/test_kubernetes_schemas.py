"""Every rendered manifest validates strictly against the oldest, a middle and the newest
Kubernetes minor that kubernetes-validate ships; the two CRD kinds against crd_schemas.py."""

from __future__ import annotations

from typing import Any

import helm_python
import jsonschema
import kubernetes_validate
import pytest
from kubernetes_validate.utils import all_versions

from tests.charts.conftest import (
    CHART_DIR,
    NAMESPACE,
    SCENARIOS,
    Rendered,
    RenderFactory,
    Values,
    scenario_values,
)
from tests.charts.crd_schemas import CRD_SCHEMAS


def _minor(version: str) -> tuple[int, int]:
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


def _minors() -> list[str]:
    """Oldest, middle and newest minor the installed kubernetes-validate has schemas for."""
    versions = sorted({_minor(v) for v in all_versions()})
    picked = dict.fromkeys([versions[0], versions[len(versions) // 2], versions[-1]])
    return [f"{major}.{minor}" for major, minor in picked]


MINORS = _minors()
NATIVE_SIDECAR_MINOR = (1, 29)


def _values_for(scenario: str, minor: str) -> Values:
    """The scenario as one would install it on that cluster: before 1.29 there are no native
    sidecars, so the proxy runs as a plain container (the chart refuses the other way round)."""
    values = scenario_values(scenario)
    proxy = values.get("cloud", {}).get("gcp", {}).get("cloudSqlProxy", {})
    if proxy.get("enabled") and _minor(minor) < NATIVE_SIDECAR_MINOR:
        proxy["nativeSidecar"] = False
    return values


def _validate(doc: dict[str, Any], minor: str) -> None:
    key = (doc["apiVersion"], doc["kind"])
    if key in CRD_SCHEMAS:
        # Not in kubernetes-validate (asserted, so a future release that adds it is noticed).
        with pytest.raises(kubernetes_validate.SchemaNotFoundError):
            kubernetes_validate.validate(doc, minor, strict=True)
        jsonschema.validate(doc, CRD_SCHEMAS[key])
        return
    kubernetes_validate.validate(doc, minor, strict=True)


def test_three_distinct_minors() -> None:
    assert len(MINORS) == 3, MINORS
    assert MINORS[0] == "1.25"  # the chart's kubeVersion floor is the package's oldest


@pytest.mark.parametrize("minor", MINORS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_manifests_validate(render: RenderFactory, scenario: str, minor: str) -> None:
    rendered: Rendered = render(values=_values_for(scenario, minor), kube_version=f"v{minor}.0")
    assert rendered.docs
    failures = []
    for doc in rendered.docs:
        try:
            _validate(doc, minor)
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as exc:
            failures.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc}")
    assert failures == []


@pytest.mark.parametrize("minor", MINORS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_lint_strict_per_minor(scenario: str, minor: str) -> None:
    report = helm_python.lint(
        CHART_DIR,
        _values_for(scenario, minor),
        strict=True,
        namespace=NAMESPACE,
        kube_version=f"v{minor}.0",
    )
    assert (report["messages"], report["errors"]) == ([], []), report


def test_crd_kinds_are_actually_checked(render: RenderFactory) -> None:
    full = render("full")
    assert {
        ("monitoring.coreos.com/v1", "ServiceMonitor"),
        ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    } <= {(d["apiVersion"], d["kind"]) for d in full.docs}
    broken = full.one("HTTPRoute")
    broken["spec"]["rules"][0]["backendRefs"][0]["prot"] = 80
    with pytest.raises(jsonschema.ValidationError):
        _validate(broken, MINORS[-1])


def test_validation_is_strict(render: RenderFactory) -> None:
    deployment = render("minimal").deployment
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(deployment, MINORS[-1])


def test_native_sidecar_needs_the_newer_schema(render: RenderFactory) -> None:
    """Why _values_for switches the proxy off native before 1.29."""
    deployment = render("gcp").deployment
    kubernetes_validate.validate(deployment, "1.29", strict=True)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, MINORS[0], strict=True)
