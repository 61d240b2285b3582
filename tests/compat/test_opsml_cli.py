"""opsml-cli (the Rust CLI on PyPI) against our server under the production gunicorn command.

Both CLIs: 0.4.4, the one the 2.2.4 client installs, and 0.7.1, the newest 0.x. A 2.2.4 client
registers a ModelCard inside a project run with two metrics (`scenarios/cli_seed.py`); then
every CLI command that talks to a server runs against it. Differences from the reference
server (which answers `get-model-metrics` with 405 and has no `/files/presigned` for 0.7.1's
`download-model`) are listed in tests/compat/README.md.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.compat import harness, venvs

pytestmark = [pytest.mark.compat, pytest.mark.timeout(1200)]

CLIS = ["0.4.4", "0.7.1"]


@pytest.fixture(scope="module")
def seeded(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[harness.LiveServer, dict[str, object], Path]]:
    folder = tmp_path_factory.mktemp("cli")
    storage = folder / "storage"
    storage.mkdir()
    server = harness.our_server(
        f"sqlite:///{folder / 'opsml.db'}", {"OPSML_STORAGE_URI": str(storage)}, folder / "log"
    ).start()
    try:
        client = venvs.ensure("client")
        facts = harness.run_scenario(client.python, server, "cli_seed", folder / "seed").summary
        yield server, facts, storage
    finally:
        server.stop()


def _cli(version: str) -> Path:
    venv = venvs.ensure("client" if version == "0.4.4" else "cli")
    return venv.bin / "opsml-cli"


def _run(version: str, server: harness.LiveServer, *args: str, cwd: Path) -> str:
    env = {**harness.clean_environ(), "OPSML_TRACKING_URI": server.url, "NO_COLOR": "1"}
    proc = subprocess.run(
        [str(_cli(version)), *args], env=env, capture_output=True, text=True, timeout=120, cwd=cwd
    )
    assert proc.returncode == 0, f"opsml-cli {version} {args}: {proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.mark.parametrize("version", CLIS)
def test_cli_version_is_the_pinned_one(version: str, tmp_path: Path) -> None:
    out = subprocess.run(
        [str(_cli(version)), "version"], capture_output=True, text=True, check=True
    ).stdout
    assert version in out


@pytest.mark.parametrize("version", CLIS)
def test_list_cards(version: str, seeded: tuple, tmp_path: Path) -> None:
    server, facts, _ = seeded
    name = str(facts["name"])
    out = _run(version, server, "list-cards", "--registry", "model", "--name", name, cwd=tmp_path)
    assert facts["uid"] in out and facts["repository"] in out and "1.0.0" in out


@pytest.mark.parametrize("version", CLIS)
@pytest.mark.parametrize("by", ["name", "name-version", "uid"])
def test_download_model_and_metadata(version: str, by: str, seeded: tuple, tmp_path: Path) -> None:
    server, facts, storage = seeded
    select = {
        "name": ["--name", facts["name"]],
        "name-version": ["--name", facts["name"], "--version", "1.0.0"],
        "uid": ["--uid", facts["uid"]],
    }[by]
    stored = storage / "OPSML_MODEL_REGISTRY" / facts["repository"] / facts["name"] / "v1.0.0"
    _run(version, server, "download-model-metadata", *select, "--write-dir", "md", cwd=tmp_path)
    metadata = (tmp_path / "md" / "model-metadata.json").read_text()
    assert f'"{facts["name"]}"' in metadata
    _run(version, server, "download-model", *select, "--write-dir", "model", cwd=tmp_path)
    # The model bytes themselves: 0.7.1 fetches through a pre-signed URL, which must verify on
    # whichever gunicorn worker serves it.
    got = (tmp_path / "model" / "trained-model.joblib").read_bytes()
    assert got == (stored / "trained-model.joblib").read_bytes()


@pytest.mark.parametrize("version", CLIS)
@pytest.mark.parametrize("uid_of", ["uid", "run_uid"])
def test_get_model_metrics_by_card_or_run_uid(
    version: str, uid_of: str, seeded: tuple, tmp_path: Path
) -> None:
    server, facts, _ = seeded
    out = _run(version, server, "get-model-metrics", "--uid", facts[uid_of], cwd=tmp_path)
    rows = [line for line in out.splitlines() if "mae" in line]
    assert [row.split()[3] for row in rows] == ["0.5", "0.25"], out


@pytest.mark.parametrize("version", CLIS)
def test_get_model_metrics_of_a_card_without_metrics(
    version: str, seeded: tuple, tmp_path: Path
) -> None:
    server, _, _ = seeded
    out = _run(version, server, "get-model-metrics", "--uid", "0" * 32, cwd=tmp_path)
    assert "Model Metrics" in out and "mae" not in out  # an empty table, not a panic


def test_presigned_urls_verify_on_every_worker(seeded: tuple) -> None:
    """Two gunicorn workers, no OPSML_SIGNING_KEY: a URL signed by one worker must verify on
    the other (each drew its own key before: about half of these failed)."""
    server, facts, storage = seeded
    path = f"opsml-root:/OPSML_MODEL_REGISTRY/{facts['repository']}/{facts['name']}/v1.0.0"
    expected = (storage / path.removeprefix("opsml-root:/") / "trained-model.joblib").read_bytes()
    with httpx.Client(base_url=server.url) as http:
        for _ in range(20):
            signed = http.get(
                "/opsml/files/presigned", params={"path": f"{path}/trained-model.joblib"}
            ).json()["url"]
            with httpx.Client() as fresh:  # a new connection: possibly the other worker
                got = fresh.get(signed)
            assert got.status_code == 200 and got.content == expected, got.text
