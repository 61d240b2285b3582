"""The Dockerfile: checkov's checks, its shape, and its install and start steps replayed.

No container engine runs here, so the image itself is never built. What can be checked is:
checkov's Dockerfile policies (0 failures), the structure the issue asks for, that the build
context (.dockerignore) holds exactly what the build copies, and - in a fresh venv built with
the Dockerfile's own `pip install` line from the files its COPY lines name - that the
Dockerfile's CMD serves real traffic, its HEALTHCHECK command tells up from down, and SIGTERM
stops it cleanly.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.charts.checkov_venv import ensure_checkov
from tests.production.dockerfile import (
    DOCKERFILE,
    REPO_ROOT,
    ImageSteps,
    dockerignore_rules,
    global_args,
    image_steps,
    parse,
)
from tests.production.venvs import _context_files, ensure_image_venv

EXPECTED_CMD = [
    "gunicorn",
    "-k",
    "uvicorn_worker.UvicornWorker",
    "--config=python:app.gunicorn_conf",
    "app.main:run_app(login=False)",
]
PRODUCTION_EXTRAS = {"server", "postgres", "gcs", "s3", "azure"}
SECRET_NAME = re.compile(
    r"PASSWORD|SECRET|TOKEN|CREDENTIAL|ACCOUNT_JSON|SIGNING_KEY|ACCESS_KEY|CONNECTION_STRING|TRACKING_URI"
)


@pytest.fixture(scope="module")
def steps() -> ImageSteps:
    return image_steps()


# --- checkov -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkov_report() -> dict[str, Any]:
    exe = ensure_checkov()  # the chart suite's cached checkov venv
    proc = subprocess.run(
        [
            str(exe),
            "--file",
            str(DOCKERFILE),
            "--framework",
            "dockerfile",
            "--output",
            "json",
            "--skip-download",
            "--soft-fail",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "LOG_LEVEL": "WARNING"},
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    docker = [r for r in reports if r.get("check_type") == "dockerfile"]
    assert len(docker) == 1, proc.stdout[:2000]
    result: dict[str, Any] = docker[0]
    return result


def test_checkov_dockerfile_checks_all_pass(checkov_report: dict[str, Any]) -> None:
    summary = checkov_report["summary"]
    failed = [
        f"{c['check_id']} {c['check_name']}" for c in checkov_report["results"]["failed_checks"]
    ]
    assert failed == []
    # One skip, on purpose: checkov cannot resolve `FROM ${BASE_IMAGE}` and so cannot see that
    # the default base carries a version tag (CKV_DOCKER_7); the build-argument test checks it.
    skipped = [c["check_id"] for c in checkov_report["results"]["skipped_checks"]]
    assert skipped == ["CKV_DOCKER_7"] * len(skipped) and skipped, skipped
    assert summary["failed"] == 0 and summary["parsing_errors"] == 0
    passed = {c["check_id"] for c in checkov_report["results"]["passed_checks"]}
    # The image-level policies that matter most must have been evaluated, not just absent.
    for check in ("CKV_DOCKER_2", "CKV_DOCKER_3", "CKV_DOCKER_8", "CKV_DOCKER_11"):
        assert check in passed, check


# --- shape -------------------------------------------------------------------------------


def test_multi_stage_on_slim_python_311_and_runtime_gets_only_the_venv() -> None:
    stages = parse()
    assert len(stages) >= 2
    for stage in stages:
        assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", stage.base), stage.base
    build, runtime = stages[0], stages[-1]
    copies = runtime.all("COPY")
    assert copies and all(c.args.startswith(f"--from={build.name} ") for c in copies), copies
    # Nothing is installed into the runtime stage: no pip, no apt, no compiler.
    for run in runtime.all("RUN"):
        assert not re.search(r"\b(pip|apt-get|apt|gcc)\b", run.args), run.args


def test_the_base_image_is_a_build_argument_for_mirrors_and_air_gaps() -> None:
    # Teams behind a mirror pass --build-arg BASE_IMAGE=...; `make image-base` builds a
    # stand-in from Debian packages. Every stage starts from that one argument.
    default = global_args().get("BASE_IMAGE", "")
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim-\w+", default), default  # a tag, not latest
    assert all(
        line.split()[1] == "${BASE_IMAGE}"
        for line in DOCKERFILE.read_text().splitlines()
        if line.upper().startswith("FROM ")
    )


def test_runs_as_a_fixed_non_root_user(steps: ImageSteps) -> None:
    uid, _, gid = steps.user.partition(":")
    assert uid.isdigit() and int(uid) >= 1000, steps.user  # numeric: runAsNonRoot can verify it
    assert gid.isdigit() and int(gid) != 0, steps.user


def test_installs_the_production_extras_only(steps: ImageSteps) -> None:
    assert steps.extras == PRODUCTION_EXTRAS
    assert "--no-cache-dir" in steps.pip_install
    assert steps.pip_install[:1] != ["-e"] and "-e" not in steps.pip_install


def test_no_secret_or_deployment_config_is_baked_in() -> None:
    for stage in parse():
        for instruction in stage.all("ENV") + stage.all("ARG"):
            assert not SECRET_NAME.search(instruction.args), instruction
    instructions = " ".join(i.args for stage in parse() for i in stage.instructions)
    for name in ("OPSML_", "AWS_", "GOOGLE_", "AZURE_", "APP_ENV"):
        assert name not in instructions, name


def test_cmd_is_the_production_gunicorn_command(steps: ImageSteps) -> None:
    assert steps.cmd == EXPECTED_CMD
    assert steps.runtime_env["PORT"] == "3000"
    assert "3000" in [i.args for i in parse()[-1].all("EXPOSE")]


def test_gunicorn_conf_takes_port_and_workers_from_the_environment() -> None:
    probe = (
        "import json, app.gunicorn_conf as c; "
        "print(json.dumps({'bind': c.bind, 'workers': c.workers}))"
    )
    base = {k: v for k, v in os.environ.items() if k not in ("PORT", "WEB_CONCURRENCY")}
    base["PROMETHEUS_MULTIPROC_DIR"] = "/tmp"  # keep the import from making a directory
    default = subprocess.run(
        [sys.executable, "-c", probe],
        env=base,
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
    )
    assert json.loads(default.stdout) == {"bind": "0.0.0.0:3000", "workers": 2}
    tuned = subprocess.run(
        [sys.executable, "-c", probe],
        env={**base, "PORT": "4100", "WEB_CONCURRENCY": "5"},
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
    )
    assert json.loads(tuned.stdout) == {"bind": "0.0.0.0:4100", "workers": 5}


def test_healthcheck_is_python_urllib_on_livez(steps: ImageSteps) -> None:
    assert steps.healthcheck[:2] == ["python", "-c"]
    assert "urllib.request" in steps.healthcheck[2] and "/livez" in steps.healthcheck[2]
    assert "curl" not in DOCKERFILE.read_text().lower().replace("no curl", "")


def _ignored(rules: list[str], rel: str) -> bool:
    """Docker's rule: the last matching pattern decides; a pattern matching a parent counts."""
    parts = rel.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for rule in rules:
        negate = rule.startswith("!")
        pattern = rule.lstrip("!").rstrip("/")
        if pattern.startswith("**/"):
            tail = pattern[3:]
            hit = any(fnmatch.fnmatch(part, tail) for part in parts)
        else:
            hit = any(
                fnmatch.fnmatch(c, pattern) and c.count("/") == pattern.count("/")
                for c in candidates
            )
        if hit:
            ignored = not negate
    return ignored


def test_build_context_is_exactly_what_the_build_copies(steps: ImageSteps) -> None:
    rules = dockerignore_rules()
    assert rules[0] == "*", "the .dockerignore must be an allow-list"
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    planted = [
        ".venv/bin/python",
        ".git/config",
        "node_modules/x.js",
        ".env",
        "app/__pycache__/main.cpython-311.pyc",
        "opsml_data/opsml.db",
    ]
    on_disk = [*listed, *planted]
    context = {rel for rel in on_disk if not _ignored(rules, rel)}
    copied = {str(src.relative_to(REPO_ROOT)) for src, _ in _context_files(steps)}
    assert context == copied
    assert (
        not {
            ".env",
            ".git/config",
            ".venv/bin/python",
            "node_modules/x.js",
            "app/__pycache__/main.cpython-311.pyc",
            "opsml_data/opsml.db",
        }
        & context
    )
    assert any(rel.startswith("app/") for rel in context) and "pyproject.toml" in context


# --- the image's steps, replayed ---------------------------------------------------------


def test_image_steps_install_and_serve(steps: ImageSteps, launch, tmp_path: Path) -> None:
    started = time.monotonic()
    venv = ensure_image_venv(steps)
    build_s = time.monotonic() - started
    python = venv / "bin" / "python"
    check = subprocess.run([str(python), "-m", "pip", "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    # Production modules are there, test tools are not, and the app is a real install.
    probe = (
        "import importlib.util as u, json, app; "
        "mods = ['pg8000', 'gcsfs', 's3fs', 'adlfs', 'uvicorn_worker', 'gunicorn', 'pytest', "
        "'moto', 'mypy']; "
        "print(json.dumps({'found': {m: u.find_spec(m) is not None for m in mods}, "
        "'app': app.__file__}))"
    )
    info = json.loads(
        subprocess.run(
            [str(python), "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path
        ).stdout
    )
    assert info["found"] == {
        "pg8000": True,
        "gcsfs": True,
        "s3fs": True,
        "adlfs": True,
        "uvicorn_worker": True,
        "gunicorn": True,
        "pytest": False,
        "moto": False,
        "mypy": False,
    }
    assert info["app"].startswith(str(venv)), info["app"]
    installed = Path(info["app"]).parent
    for source in sorted((REPO_ROOT / "app").rglob("*.py")):
        copy = installed / source.relative_to(REPO_ROOT / "app")
        assert copy.read_bytes() == source.read_bytes(), f"stale install of {source}"

    # The runtime ENV of the image, then the CMD, with no OPSML_* set: the embedded default.
    env = {k: v for k, v in steps.runtime_env.items() if k != "PATH"}
    server = launch(env, bin_dir=venv / "bin", ready_path="/readyz")
    assert len(server.wait_workers(int(steps.runtime_env["WEB_CONCURRENCY"]))) == 2
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.get("/livez").json() == {"status": "ok"}
        version = http.post(
            "/opsml/cards/version",
            json={
                "name": "image-smoke",
                "repository": "prod",
                "registry_type": "data",
                "version_type": "minor",
            },
        ).json()["version"]
        assert version == "1.0.0"
        record = {
            "uid": "a" * 32,
            "name": "image-smoke",
            "repository": "prod",
            "version": version,
            "contact": "ops",
            "timestamp": 1,
            "tags": {},
        }
        created = http.post("/opsml/cards/create", json={"card": record, "registry_type": "data"})
        assert created.json() == {"registered": True}
        path = "opsml-root:/OPSML_DATA_REGISTRY/prod/image-smoke/v1.0.0/data.bin"
        payload = os.urandom(2 * 1024 * 1024)
        uploaded = http.post(
            "/opsml/files/upload",
            headers={"write_path": path},
            files={"file": ("data.bin", payload)},
        )
        assert uploaded.status_code == 200, uploaded.text
        assert http.get("/opsml/files/download", params={"path": path}).content == payload
        listed = http.post(
            "/opsml/cards/list", json={"name": "image-smoke", "registry_type": "data"}
        )
        assert [c["uid"] for c in listed.json()["cards"]] == [record["uid"]]
        assert "opsml_http_requests_total" in http.get("/metrics").text
    # The embedded default landed in the working directory (the image's WORKDIR).
    assert (server.workdir / "opsml_data" / "opsml.db").is_file()
    assert (server.workdir / "opsml_data" / "artifacts" / "OPSML_DATA_REGISTRY").is_dir()

    health_env = {
        **os.environ,
        "PATH": f"{venv / 'bin'}:{os.environ['PATH']}",
        "PORT": str(server.port),
    }
    healthy = subprocess.run(steps.healthcheck, env=health_env, capture_output=True, timeout=30)
    assert healthy.returncode == 0, healthy.stderr

    server.sigterm()
    assert server.wait_exit(30) == 0, server.log_text()[-3000:]
    unhealthy = subprocess.run(steps.healthcheck, env=health_env, capture_output=True, timeout=30)
    assert unhealthy.returncode != 0
    assert "Traceback" not in server.log_text().split("Handling signal")[-1]
    print(f"image venv ready in {build_s:.1f}s")
