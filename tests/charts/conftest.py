"""Fixtures for the Helm chart tests: the loaded chart, named scenarios and a render factory.

Scenarios are the values files ``charts/opsml-server/ci/<scenario>-values.yaml``; a test renders
one (optionally with overrides) through the real Helm engine and asserts on parsed manifests.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml
from helm_python import _native

CHART_DIR = Path(__file__).resolve().parents[2] / "charts" / "opsml-server"
CI_DIR = CHART_DIR / "ci"
SCENARIOS = sorted(p.name.removesuffix("-values.yaml") for p in CI_DIR.glob("*-values.yaml"))
RELEASE = "opsml"
NAMESPACE = "opsml"
FULLNAME = "opsml-opsml-server"

Values = dict[str, Any]
Doc = dict[str, Any]


def deep_merge(base: Values, override: Values) -> Values:
    """Helm-style merge: maps merge key by key, anything else is replaced."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def scenario_values(scenario: str, overrides: Values | None = None) -> Values:
    values = yaml.safe_load((CI_DIR / f"{scenario}-values.yaml").read_text()) or {}
    return deep_merge(values, overrides or {})


@dataclass(frozen=True)
class Rendered:
    """Parsed manifests of one render, keyed back to their template files."""

    files: dict[str, list[Doc]]
    notes: str

    @property
    def docs(self) -> list[Doc]:
        return [doc for docs in self.files.values() for doc in docs]

    def kinds(self) -> list[str]:
        return sorted(doc["kind"] for doc in self.docs)

    def all(self, kind: str) -> list[Doc]:
        return [doc for doc in self.docs if doc["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> Doc:
        found = [d for d in self.all(kind) if name is None or d["metadata"]["name"] == name]
        assert len(found) == 1, (
            f"expected one {kind} {name or ''}, got {len(found)}: {self.kinds()}"
        )
        return found[0]

    @property
    def deployment(self) -> Doc:
        return self.one("Deployment")

    @property
    def migration_job(self) -> Doc:
        return self.one("Job")


def render_chart(
    chart: helm_python.Chart, values: Values, *, kube_version: str | None = None, **kwargs: Any
) -> dict[str, str]:
    """Chart.render, plus the target cluster version (.Capabilities.KubeVersion).

    The public ``Chart.render`` has no kube_version option although the native renderer takes
    one (``lint`` exposes it, but lint turns ``fail`` into a log line). Tests need it to render
    for the cluster versions they validate against, so this goes one level down, in one place.
    """
    if kube_version is None:
        return chart.render(values, name=RELEASE, namespace=NAMESPACE, **kwargs)
    opts = {"name": RELEASE, "namespace": NAMESPACE, "kube_version": kube_version, **kwargs}
    out: dict[str, str] = json.loads(
        _native.call_string("helm_render", chart._raw(), json.dumps(values), json.dumps(opts))
    )
    return out


def containers(pod_spec: dict[str, Any], *, init: bool = False) -> dict[str, dict[str, Any]]:
    key = "initContainers" if init else "containers"
    return {c["name"]: c for c in pod_spec.get(key, [])}


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


@pytest.fixture(scope="session")
def chart() -> Iterator[helm_python.Chart]:
    loaded = helm_python.Chart.load(CHART_DIR)
    yield loaded
    loaded.close()


RenderFactory = Callable[..., Rendered]


def make_renderer(chart: helm_python.Chart) -> RenderFactory:
    """render(scenario="minimal", overrides=None, values=None, kube_version=None, ...)."""

    def factory(
        scenario: str | None = "minimal",
        overrides: Values | None = None,
        *,
        values: Values | None = None,
        **kwargs: Any,
    ) -> Rendered:
        if values is None:
            values = scenario_values(scenario, overrides) if scenario else (overrides or {})
        out = render_chart(chart, values, **kwargs)
        files: dict[str, list[Doc]] = {}
        notes = ""
        for path, text in out.items():
            if path.endswith("NOTES.txt"):
                notes = text
                continue
            docs = [d for d in yaml.safe_load_all(text) if d]
            if docs:
                files[path] = docs
        return Rendered(files=files, notes=notes)

    return factory


@pytest.fixture
def render(chart: helm_python.Chart) -> RenderFactory:
    return make_renderer(chart)
