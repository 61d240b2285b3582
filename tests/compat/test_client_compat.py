"""The real opsml==2.2.4 client against a live server, one test per scenario.

The scenarios (``scenarios/*.py``) run in the client venv and check the server's answers
themselves; here we check that they ran to the end and what they report.
Switch the server with ``OPSML_COMPAT_SERVER=reference`` (see conftest.py).
"""

from __future__ import annotations

import subprocess

import pytest

from tests.compat import venvs
from tests.compat.conftest import ScenarioRunner
from tests.compat.harness import LiveServer

pytestmark = [pytest.mark.compat, pytest.mark.timeout(1800)]  # a cold venv build is slow


def test_client_venv_is_the_pinned_opsml(client_venv: venvs.Venv) -> None:
    out = subprocess.run(
        [str(client_venv.python), "-c", "import opsml, sklearn; print(opsml.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == venvs.OPSML_VERSION
    again = venvs.ensure("client")  # cached: the same directory, no rebuild
    assert again.path == client_venv.path
    assert again.build_info() == client_venv.build_info()


def test_datacard_register_load_update_delete(
    live_server: LiveServer, run_scenario: ScenarioRunner
) -> None:
    summary = run_scenario(live_server, "datacard").summary
    assert summary["version"] == "1.0.0"
    assert summary["checks"] >= 30


def test_modelcard_register_load_update_delete(
    live_server: LiveServer, run_scenario: ScenarioRunner
) -> None:
    summary = run_scenario(live_server, "modelcard").summary
    assert summary["version"] == "1.0.0"
    assert summary["checks"] >= 25


def test_project_run_metrics_parameters_artifacts(
    live_server: LiveServer, run_scenario: ScenarioRunner
) -> None:
    summary = run_scenario(live_server, "project_run").summary
    assert isinstance(summary["project_id"], int)
    assert len(str(summary["run_uid"])) == 32
    assert summary["checks"] >= 25


def test_versions_and_list_filters(live_server: LiveServer, run_scenario: ScenarioRunner) -> None:
    summary = run_scenario(live_server, "list_versions").summary
    assert summary["versions"] == [
        "1.0.0",
        "1.0.1",
        "1.1.0",
        "1.2.0",
        "1.2.1",
        "2.0.0",
        "2.1.0-rc.1",
        "2.1.0-rc.2",
        "1.5.0",
    ]
    assert summary["checks"] >= 25


def test_scenarios_share_one_server(live_server: LiveServer, run_scenario: ScenarioRunner) -> None:
    """Scenarios repeated on one long-lived server: unique names keep the runs apart."""
    for name in ["datacard", "project_run", "datacard"]:
        assert run_scenario(live_server, name).summary["ok"] is True
