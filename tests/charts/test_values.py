"""values.yaml and values.schema.json: documented, strict, and rejecting bad input."""

from __future__ import annotations

import json
import re
from typing import Any

import helm_python
import pytest
import yaml

from tests.charts.conftest import CHART_DIR, SCENARIOS, RenderFactory, scenario_values

VALUES_FILE = CHART_DIR / "values.yaml"
SCHEMA_FILE = CHART_DIR / "values.schema.json"
KEY_LINE = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z][A-Za-z0-9]*):(\s|$)")


def _walk_objects(schema: dict[str, Any], path: str = "$") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if schema.get("type") == "object" and "properties" in schema:
        found.append((path, schema))
    for key, sub in schema.get("properties", {}).items():
        found += _walk_objects(sub, f"{path}.{key}")
    return found


def test_values_file_points_at_its_schema() -> None:
    first = VALUES_FILE.read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=values.schema.json"


# Defaults whose keys are Kubernetes data (resource quantities, securityContext fields), described
# by the comment on the block itself rather than line by line.
DATA_BLOCKS = {"resources", "podSecurityContext", "securityContext"}


def test_every_values_key_is_commented_and_camel_case() -> None:
    lines = VALUES_FILE.read_text().splitlines()
    stack: list[tuple[int, str]] = []  # (indent, key) of the enclosing keys
    undocumented = []
    for number, line in enumerate(lines):
        match = KEY_LINE.match(line)
        if not match:
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parents = [key for _, key in stack]
        stack.append((indent, match["key"]))
        assert "_" not in match["key"] and "-" not in match["key"], line
        if DATA_BLOCKS.intersection(parents):
            continue
        if not (number and lines[number - 1].strip().startswith("#")):
            undocumented.append(f"{number + 1}: {'.'.join([*parents, match['key']])}")
    assert undocumented == []
    assert len(stack) > 0


def test_schema_is_strict_everywhere() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    objects = _walk_objects(schema)
    assert len(objects) > 20
    loose = [path for path, obj in objects if obj.get("additionalProperties") is not False]
    assert loose == []


def test_schema_covers_exactly_the_values_keys() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    values = yaml.safe_load(VALUES_FILE.read_text())
    assert set(values) == set(schema["properties"]) - {"global"}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenarios_pass_the_schema(chart: helm_python.Chart, scenario: str) -> None:
    chart.validate_schema(scenario_values(scenario))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"cloud": {"preset": "gke"}}, r"/cloud/preset"),
        ({"cloud": {"preset": "azure"}}, r"/cloud/azure/storageAccountName"),
        ({"replicas": 3}, r"additional properties 'replicas' not allowed"),
        (
            {"cloud": {"gcp": {"workloadIdentity": "x"}}},
            r"additional properties 'workloadIdentity'",
        ),
        ({"storage": {"uri": ""}}, r"/storage/uri"),
        ({"server": {"port": 80}}, r"/server/port"),
        ({"securityContext": {"allowPrivilegeEscalation": True}}, r"allowPrivilegeEscalation"),
        ({"podSecurityContext": {"runAsNonRoot": False}}, r"runAsNonRoot"),
        ({"image": {"digest": "latest"}}, r"/image/digest"),
        ({"auth": {"appEnv": "prod"}}, r"/auth/appEnv"),
        ({"cloud": {"aws": {"roleArn": "opsml-role"}}}, r"/cloud/aws/roleArn"),
        (
            {"cloud": {"preset": "gcp", "gcp": {"cloudSqlProxy": {"enabled": True}}}},
            r"instanceConnectionName",
        ),
        ({"ingress": {"enabled": True}}, r"/ingress/hosts"),
        ({"resources": {"requests": {"cpu": "lots"}}}, r"/resources/requests/cpu"),
    ],
)
def test_schema_rejects(
    chart: helm_python.Chart, render: RenderFactory, overrides: dict[str, Any], message: str
) -> None:
    values = scenario_values("minimal", overrides)
    with pytest.raises(helm_python.HelmValuesError, match=message):
        chart.validate_schema(values)
    # An install (render) refuses the same values.
    with pytest.raises(helm_python.HelmValuesError):
        render(values=values)


def test_azure_with_account_name_passes(chart: helm_python.Chart) -> None:
    chart.validate_schema(
        scenario_values(
            "minimal", {"cloud": {"preset": "azure", "azure": {"storageAccountName": "acct01"}}}
        )
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"database": {"existingSecret": ""}}, r"database.existingSecret"),
        ({"auth": {"enabled": True}}, r"auth.enabled needs"),
        ({"auth": {"appEnv": "production"}}, r"auth.appEnv=production needs"),
    ],
)
def test_cross_field_rules_fail_the_render(
    render: RenderFactory, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(helm_python.HelmRenderError, match=message):
        render("minimal", overrides)


def _leaf_paths(values: Any, prefix: str = "") -> list[str]:
    if not isinstance(values, dict) or not values or prefix.split(".")[-1] in DATA_BLOCKS:
        return [prefix]
    return [p for k, v in values.items() for p in _leaf_paths(v, f"{prefix}.{k}" if prefix else k)]


def test_readme_documents_every_value_and_every_cloud() -> None:
    readme = (CHART_DIR / "README.md").read_text()
    values = yaml.safe_load(VALUES_FILE.read_text())
    missing = [path for path in _leaf_paths(values) if f"| `{path}` |" not in readme]
    assert missing == []
    for preset in ("gcp", "aws", "azure"):
        assert f"--set cloud.preset={preset}" in readme
    assert readme.count("helm install opsml charts/opsml-server -n opsml") >= 4
