"""Configuration errors are one clear line naming the variable; the CLI flags behave."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import pytest

from app.errors import ConfigError
from app.settings import load_settings, parse_tracking_uri
from tests.conftest import ClientFactory

SECRET = "hunter2-do-not-print"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"OPSML_POOL_SIZE": "lots"}, "OPSML_POOL_SIZE"),
        ({"OPSML_POOL_SIZE": "0"}, "OPSML_POOL_SIZE"),
        ({"OPSML_MAX_OVERFLOW": "-1"}, "OPSML_MAX_OVERFLOW"),
        ({"APP_ENV": "moon"}, "APP_ENV"),
        ({"OPSML_TRACKING_URI": f"mysql://root:{SECRET}@db/opsml"}, "OPSML_TRACKING_URI"),
        (
            {"OPSML_TRACKING_URI": f"postgresql+psycopg2://u:{SECRET}@db/opsml"},
            "OPSML_TRACKING_URI",
        ),
        ({"OPSML_TRACKING_URI": f"postgresql://u:{SECRET}@/"}, "OPSML_TRACKING_URI"),
    ],
)
def test_bad_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], variable: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = caught.value.message
    assert message.startswith(variable) or variable in message
    assert "\n" not in message and SECRET not in message


def test_tracking_uri_forms() -> None:
    assert parse_tracking_uri("opsml.db").database == "opsml.db"
    assert parse_tracking_uri("sqlite:///x.db").get_backend_name() == "sqlite"
    url = parse_tracking_uri(f"postgresql://u:{SECRET}@db:5432/opsml")
    assert url.drivername == "postgresql+pg8000" and url.host == "db"
    assert SECRET not in repr(url)


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from app.cli import uvicorn_server; uvicorn_server()", *args],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_prints_one_line_and_exits_on_bad_config(tmp_path: Path) -> None:
    result = _run(
        [],
        {"OPSML_TRACKING_URI": f"mysql://root:{SECRET}@db/x", "OPSML_STORAGE_URI": str(tmp_path)},
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "OPSML_TRACKING_URI" in result.stderr
    assert SECRET not in result.stderr + result.stdout and "Traceback" not in result.stderr


def test_login_flag_is_a_real_switch(tmp_path: Path) -> None:
    env = {"OPSML_TRACKING_URI": str(tmp_path / "db.sqlite"), "OPSML_STORAGE_URI": str(tmp_path)}
    result = _run(["--login"], env)  # no credentials configured: must refuse, not run open
    assert result.returncode == 2 and "OPSML_USERNAME" in result.stderr
    result = _run(["--login", "False"], env)
    assert result.returncode == 2 and "unrecognized arguments" in result.stderr


def test_gunicorn_factory_exits_with_boot_error_code(monkeypatch: pytest.MonkeyPatch) -> None:
    from app import main

    monkeypatch.setattr(main, "configure_logging", lambda: None)  # keep pytest's log capture
    monkeypatch.setenv("OPSML_POOL_SIZE", "many")
    with pytest.raises(SystemExit) as caught:
        main.run_app(login=False)
    assert caught.value.code == 3


def test_garbage_collection_is_back_on_once_the_server_is_ready(
    make_client: ClientFactory,
) -> None:
    # The entry points pause the collector while the server imports and builds itself.
    gc.disable()
    try:
        with make_client() as client:
            assert client.get("/livez").status_code == 200
            assert gc.isenabled()
    finally:
        gc.enable()


def test_importing_the_cli_or_migrating_leaves_garbage_collection_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only the server's start path may pause the collector: `opsml-server migrate` (and anything
    # that imports app.cli) runs with it on.
    monkeypatch.setenv("OPSML_TRACKING_URI", f"sqlite:///{tmp_path / 'gc.db'}")
    script = (
        "import gc, sys\n"
        "import app.cli\n"
        "assert gc.isenabled(), 'importing app.cli disabled gc'\n"
        "import app.db.migrate as m\n"
        "real = m.run_migrations\n"
        "def spy(*args, **kwargs):\n"
        "    assert gc.isenabled(), 'migrate ran with gc disabled'\n"
        "    return real(*args, **kwargs)\n"
        "m.run_migrations = spy\n"
        "app.cli.main(['migrate'])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "database schema at revision" in proc.stdout
