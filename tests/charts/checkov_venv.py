"""A private, cached virtual environment for checkov, and a runner that returns its JSON report.

checkov pins dozens of packages and would fight the main environment's resolver, so it lives in
its own venv built from ``charts/requirements-checkov.txt`` with the exact versions of
``charts/constraints-checkov.txt`` (no resolver backtracking, no untested release). The
directory name carries the interpreter version and a digest of both files: editing a pin builds
a fresh venv beside the old one. Builds hold an exclusive ``fcntl`` lock, so concurrent pytest
runs build it once; a build that dies half-way leaves no ``.complete`` marker and is redone by
the next caller.

``python -m tests.charts.checkov_venv`` builds it ahead of time; ``make install`` does, so no
test waits for the build (it once ran past pytest's 600 s timeout on a busy machine).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

from tests.support.locks import file_lock

_CHARTS = Path(__file__).resolve().parents[2] / "charts"
REQUIREMENTS = _CHARTS / "requirements-checkov.txt"
CONSTRAINTS = _CHARTS / "constraints-checkov.txt"
_MARKER = ".complete"
_BUILD_TIMEOUT_S = 900


def cache_root() -> Path:
    return Path(os.environ.get("OPSML_CHECKOV_CACHE") or "~/.cache/opsml-server").expanduser()


def venv_path() -> Path:
    digest = hashlib.sha256(REQUIREMENTS.read_bytes() + CONSTRAINTS.read_bytes()).hexdigest()[:12]
    py = f"py{sys.version_info.major}{sys.version_info.minor}"
    return cache_root() / f"checkov-venv-{py}-{digest}"


def ensure_checkov() -> Path:
    """Return the checkov executable, building its venv first if needed."""
    path = venv_path()
    exe = path / "bin" / "checkov"
    with file_lock(path.with_suffix(".lock")):
        if (path / _MARKER).exists() and exe.exists():
            return exe
        shutil.rmtree(path, ignore_errors=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(path)
        subprocess.run(
            [
                str(path / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
                str(REQUIREMENTS),
                "-c",
                str(CONSTRAINTS),
            ],
            check=True,
            timeout=_BUILD_TIMEOUT_S,
        )
        version = subprocess.run(
            [str(exe), "--version"], check=True, capture_output=True, text=True, timeout=120
        ).stdout.strip()
        (path / _MARKER).write_text(json.dumps({"checkov": version}))
    return exe


def run_checkov(directory: Path) -> dict[str, Any]:
    """Scan every manifest under ``directory``; return checkov's kubernetes report."""
    exe = ensure_checkov()
    env = {
        **os.environ,
        # Offline: no guideline or policy download from the vendor's API.
        "BC_SKIP_MAPPING": "TRUE",
        "LOG_LEVEL": "WARNING",
    }
    proc = subprocess.run(
        [
            str(exe),
            "--directory",
            str(directory),
            "--framework",
            "kubernetes",
            "--output",
            "json",
            "--skip-download",
            "--soft-fail",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"checkov exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    kube = [r for r in reports if r.get("check_type") == "kubernetes"]
    if len(kube) != 1:
        raise RuntimeError(f"expected one kubernetes report, got: {proc.stdout[:2000]}")
    result: dict[str, Any] = kube[0]
    return result


if __name__ == "__main__":
    print(ensure_checkov())
