"""checkov over the rendered manifests of every scenario: no failed check, and every skipped
check is skipped by the chart itself with a written reason."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml

from tests.charts.checkov_venv import run_checkov
from tests.charts.conftest import SCENARIOS, make_renderer

# Checks the chart skips (checkov.io/skipN annotations in the templates), and why.
ALLOWED_SKIPS = {
    "CKV_K8S_35": "secrets as env: the server is configured only through its environment",
    "CKV_K8S_43": "image by tag: only while no digest is set",
    "CKV_K8S_8": "liveness probe: not for the one-shot helm test pod",
    "CKV_K8S_9": "readiness probe: not for the one-shot helm test pod",
}


@pytest.fixture(scope="module")
def checkov_report(
    chart: helm_python.Chart, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """One checkov run over every scenario, one file per rendered template."""
    render = make_renderer(chart)
    root = tmp_path_factory.mktemp("rendered")
    for scenario in SCENARIOS:
        for template, docs in render(scenario).files.items():
            out = root / scenario / Path(template).name
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(yaml.safe_dump_all(docs))
    return run_checkov(root)


def _by_scenario(checks: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for check in checks:
        grouped[Path(check["file_path"]).parts[1]].append(check)
    return grouped


def test_checkov_scanned_every_scenario(checkov_report: dict[str, Any]) -> None:
    summary = checkov_report["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 100
    passed = _by_scenario(checkov_report["results"]["passed_checks"])
    assert set(passed) == set(SCENARIOS)


def test_checkov_has_no_failed_checks(checkov_report: dict[str, Any]) -> None:
    failed = [
        f"{c['check_id']} {c['check_name']}: {c['file_path']} {c['resource']}"
        for c in checkov_report["results"]["failed_checks"]
    ]
    assert checkov_report["summary"]["failed"] == 0
    assert failed == []


def test_every_skip_is_allowed_and_explained(checkov_report: dict[str, Any]) -> None:
    skipped = checkov_report["results"]["skipped_checks"]
    for check in skipped:
        assert check["check_id"] in ALLOWED_SKIPS, check["check_id"]
        reason = check["check_result"].get("suppress_comment", "")
        assert len(reason) > 30, (check["check_id"], reason)


def test_digest_skip_disappears_with_digests(checkov_report: dict[str, Any]) -> None:
    skipped = _by_scenario(checkov_report["results"]["skipped_checks"])
    assert "CKV_K8S_43" not in {c["check_id"] for c in skipped["full"]}
    assert "CKV_K8S_43" in {c["check_id"] for c in skipped["minimal"]}
