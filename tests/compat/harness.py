"""Live servers and scenario runs for the compatibility suite.

A `LiveServer` is a real server process (ours under gunicorn, or the reference opsml 2.2.4
under uvicorn) in its own process group on a free loopback port; `stop()` ends the whole
group. `run_scenario` runs one script from `scenarios/` with the client venv's interpreter
and returns its JSON summary, or raises `ScenarioFailed` with everything needed to see why:
the scenario's output and the tail of the server's log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.processes import free_port, poll_http, stop_group

REPO_ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = Path(__file__).resolve().parent / "scenarios"
SUMMARY_PREFIX = "SUMMARY "
START_TIMEOUT_S = 90.0
SCENARIO_TIMEOUT_S = 600.0

# Variables that would change what a server or the client does; never inherited.
_SCRUBBED_PREFIXES = ("OPSML_", "GOOGLE_", "AWS_", "AZURE_", "STORAGE_EMULATOR_HOST")
_SCRUBBED = {"APP_ENV", "WEB_CONCURRENCY", "PORT", "PROMETHEUS_MULTIPROC_DIR"}


class ServerStartError(RuntimeError):
    pass


class ScenarioFailed(AssertionError):
    pass


def clean_environ() -> dict[str, str]:
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(_SCRUBBED_PREFIXES) and key not in _SCRUBBED
    }


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


@dataclass
class LiveServer:
    kind: str  # "ours" or "reference"
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    ready_path: str
    cwd: Path = REPO_ROOT
    port: int = field(default_factory=free_port)
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, limit: int = 4000) -> str:
        return _tail(self.log_path, limit)

    def start(self) -> LiveServer:
        argv = [part.replace("{port}", str(self.port)) for part in self.argv]
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        poll = poll_http(
            self.url + self.ready_path,
            alive=lambda: self._proc is not None and self._proc.poll() is None,
            timeout_s=START_TIMEOUT_S,
            status=200,
        )
        poll.response_or_raise(ServerStartError, f"{self.kind} server", self.log_tail)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_group(proc)


def our_server(tracking_uri: str, storage_env: Mapping[str, str], log_path: Path) -> LiveServer:
    """Our server exactly as production runs it, with two gunicorn workers."""
    gunicorn = Path(sys.executable).parent / "gunicorn"
    env = {
        **clean_environ(),
        **storage_env,
        "OPSML_TRACKING_URI": tracking_uri,
        "WEB_CONCURRENCY": "2",
        "GUNICORN_GRACEFUL_TIMEOUT": "5",
    }
    argv = [
        str(gunicorn),
        "-k",
        "uvicorn_worker.UvicornWorker",
        "--config=python:app.gunicorn_conf",
        "--bind=127.0.0.1:{port}",
        "app.main:run_app(login=False)",
    ]
    return LiveServer("ours", argv, env, log_path, ready_path="/readyz")


def migrate(tracking_uri: str, log_path: Path) -> None:
    """`opsml-server migrate`: shared databases are migrated before servers start."""
    cli = Path(sys.executable).parent / "opsml-server"
    env = {**clean_environ(), "OPSML_TRACKING_URI": tracking_uri}
    with log_path.open("ab") as log:
        proc = subprocess.run(
            [str(cli), "migrate"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=120,
        )
    if proc.returncode != 0:
        raise ServerStartError(f"opsml-server migrate exited {proc.returncode}:\n{_tail(log_path)}")


def reference_server(
    venv_bin: Path, tracking_uri: str, storage_env: Mapping[str, str], log_path: Path
) -> LiveServer:
    """The reference opsml 2.2.4 server, as its docs start it."""
    env = {**clean_environ(), **storage_env, "OPSML_TRACKING_URI": tracking_uri}
    argv = [
        str(venv_bin / "uvicorn"),
        "--factory",
        "opsml.app.main:run_app",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
    ]
    return LiveServer("reference", argv, env, log_path, ready_path="/opsml/healthcheck")


@dataclass(frozen=True)
class ScenarioRun:
    summary: dict[str, object]
    output: str
    seconds: float


def run_scenario(
    client_python: Path,
    server: LiveServer,
    name: str,
    workdir: Path,
    extra_env: Mapping[str, str] | None = None,
) -> ScenarioRun:
    """Run scenarios/<name>.py against `server`; raise ScenarioFailed unless it passes."""
    script = SCENARIOS / f"{name}.py"
    env = {
        **clean_environ(),
        "OPSML_TRACKING_URI": server.url,
        "OPSML_COMPAT_RUN_ID": uuid.uuid4().hex[:8],
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        **(extra_env or {}),
    }
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [str(client_python), str(script)],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=SCENARIO_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as error:
        raise ScenarioFailed(
            f"scenario {name} timed out after {SCENARIO_TIMEOUT_S:.0f}s against the {server.kind} "
            f"server; server log:\n{server.log_tail()}"
        ) from error
    seconds = time.monotonic() - started
    output = proc.stdout + ("\n--- stderr ---\n" + proc.stderr if proc.stderr else "")
    summaries = [
        json.loads(line[len(SUMMARY_PREFIX) :])
        for line in proc.stdout.splitlines()
        if line.startswith(SUMMARY_PREFIX)
    ]
    if proc.returncode != 0 or len(summaries) != 1 or summaries[0].get("ok") is not True:
        # Client logs are JSON lines; keep the informative rest readable.
        shown = "\n".join(
            line for line in output.splitlines() if '"level":"INFO"' not in line.replace(" ", "")
        )[-6000:]
        raise ScenarioFailed(
            f"scenario {name} failed against the {server.kind} server "
            f"(exit {proc.returncode}):\n{shown}\n--- server log tail ---\n{server.log_tail()}"
        )
    return ScenarioRun(summaries[0], output, seconds)
