"""Build and cache the two virtual environments the compatibility suite needs.

* ``client``: the real ``opsml==2.2.4`` client plus scikit-learn; the scenarios run in it.
* ``reference``: the reference ``opsml[server]==2.2.4`` server, used to validate the
  scenarios and to produce databases for the drop-in test.
* ``cli``: the newest ``opsml-cli`` 0.x (the clients bring their own 0.4.x).

Each environment is built once per set of pinned requirements and kept under
``~/.cache/opsml-server/venvs/`` (``OPSML_COMPAT_CACHE`` overrides the root). The directory
name carries the opsml version, the interpreter version and a digest of the requirements
file, so editing a pin builds a fresh environment beside the old one.

Builds take an exclusive ``fcntl`` lock per environment, so two pytest processes (or
``python tests/compat/venvs.py`` and pytest) never build the same environment at once; the
second waits and then reuses the first one's result. A build that dies half-way leaves no
``.complete`` marker and is wiped and redone by the next caller.

Run ``python tests/compat/venvs.py [client|reference ...]`` to build ahead of time; it prints
how long each build took.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests.support.locks import file_lock

OPSML_VERSION = "2.2.4"
_HERE = Path(__file__).resolve().parent
_MARKER = ".complete"


@dataclass(frozen=True)
class VenvSpec:
    name: str
    requirements: Path
    smoke_import: str  # a statement that must run in the finished environment


SPECS: dict[str, VenvSpec] = {
    "client": VenvSpec(
        "client",
        _HERE / "requirements-client.txt",
        "import opsml, sklearn, pandas; from opsml import CardRegistry",
    ),
    "cli": VenvSpec(
        "cli",
        _HERE / "requirements-cli.txt",
        "import shutil, sys; sys.exit(shutil.which('opsml-cli', path=sys.prefix + '/bin') is None)",
    ),
    "reference": VenvSpec(
        "reference",
        _HERE / "requirements-reference.txt",
        "import uvicorn; from opsml.app.main import run_app",
    ),
}


@dataclass(frozen=True)
class Venv:
    name: str
    path: Path

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    def build_info(self) -> dict[str, object]:
        return json.loads((self.path / _MARKER).read_text())


def cache_root() -> Path:
    root = os.environ.get("OPSML_COMPAT_CACHE") or "~/.cache/opsml-server"
    return Path(root).expanduser() / "venvs"


def _base_python() -> str:
    """The interpreter the environments are made from (the one running this code)."""
    return os.environ.get("OPSML_COMPAT_PYTHON") or sys.executable


def _key(spec: VenvSpec, python: str) -> str:
    version = subprocess.run(
        [python, "-c", "import sys; print('%d%d' % sys.version_info[:2])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    digest = hashlib.sha256(spec.requirements.read_bytes()).hexdigest()[:10]
    return f"{spec.name}-opsml{OPSML_VERSION}-py{version}-{digest}"


class VenvBuildError(RuntimeError):
    pass


def _run(cmd: list[str], log: Path) -> None:
    with log.open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        tail = "\n".join(
            line for line in log.read_text().splitlines()[-40:] if "is ignored" not in line
        )
        raise VenvBuildError(f"{' '.join(cmd)} exited {proc.returncode}; log {log}:\n{tail}")


def ensure(name: str, *, timeout_s: float = 1800.0) -> Venv:
    """Return the cached environment ``name``, building it first if needed."""
    return build(SPECS[name], cache_root(), timeout_s=timeout_s)


def build(spec: VenvSpec, root: Path, *, timeout_s: float = 1800.0) -> Venv:
    """Build ``spec`` under ``root`` unless a complete build is already there."""
    python = _base_python()
    path = root / _key(spec, python)
    venv = Venv(spec.name, path)
    if (path / _MARKER).exists():
        return venv
    with file_lock(root / f"{path.name}.lock", timeout_s):
        if (path / _MARKER).exists():  # another process built it while we waited
            return venv
        shutil.rmtree(path, ignore_errors=True)
        log = root / f"{path.name}.log"
        log.write_text("")
        started = time.monotonic()
        _run([python, "-m", "venv", str(path)], log)
        _run(
            [
                str(venv.python),
                "-m",
                "pip",
                "install",
                "--no-input",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
                str(spec.requirements),
            ],
            log,
        )
        _run([str(venv.python), "-c", spec.smoke_import], log)
        info = {
            "seconds": round(time.monotonic() - started, 1),
            "requirements": spec.requirements.name,
            "python": python,
            "pid": os.getpid(),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        (path / _MARKER).write_text(json.dumps(info))
    return venv


def ensure_many(names: list[str]) -> dict[str, Venv]:
    """Build several environments at once (pip is mostly waiting on the network)."""
    with ThreadPoolExecutor(max_workers=len(names) or 1) as pool:
        futures = {name: pool.submit(ensure, name) for name in names}
        return {name: future.result() for name, future in futures.items()}


def main(argv: list[str]) -> int:
    names = argv or list(SPECS)
    started = time.monotonic()
    for name, venv in ensure_many(names).items():
        print(f"{name}: {venv.path} (build took {venv.build_info()['seconds']}s)")
    print(f"all ready after {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
