"""A virtualenv with the image's install steps, built from the repository with pip.

The build context is exactly what the Dockerfile's build stage COPYs (parsed from it), laid
out in a temporary directory, and the install is the Dockerfile's own `pip install` line run
with the new venv's pip. So a file the image forgets to copy, or an extra that is missing,
breaks this build the same way it would break `docker build`.

The venv is cached under ~/.cache/opsml-server/production/ (`OPSML_PRODUCTION_CACHE`
overrides), keyed by a digest of the interpreter version, the pip line and the build context
outside app/ (pyproject.toml, README.md): a change there builds a fresh venv, as a change to
the dependency layer would in Docker. The project itself is reinstalled from the current tree
on every run, so the served code is always the checked-out code. Builds hold an `fcntl` lock
and finish with a `.complete` marker, so concurrent runs build once and a half-built venv is
redone.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

from tests.production.dockerfile import REPO_ROOT, ImageSteps
from tests.support.locks import file_lock

_MARKER = ".complete"
_BUILD_TIMEOUT_S = 900
_SKIP_NAMES = {"__pycache__", ".DS_Store"}


def cache_root() -> Path:
    root = os.environ.get("OPSML_PRODUCTION_CACHE") or "~/.cache/opsml-server/production"
    return Path(root).expanduser()


def _context_files(steps: ImageSteps) -> list[tuple[Path, str]]:
    """(source in the repo, path inside the build context) for every copied file."""
    files: list[tuple[Path, str]] = []
    for sources, destination in steps.copies:
        for source in sources:
            src = REPO_ROOT / source
            if not src.exists():
                raise FileNotFoundError(f"the Dockerfile copies {source}, which does not exist")
            if src.is_dir():
                target = destination.rstrip("/")
                for path in sorted(src.rglob("*")):
                    if (
                        path.is_file()
                        and not (set(path.parts) & _SKIP_NAMES)
                        and path.suffix != ".pyc"
                    ):
                        files.append((path, f"{target}/{path.relative_to(src)}"))
            else:
                target = destination if not destination.endswith("/") else destination + src.name
                if destination in ("./", "."):
                    target = src.name
                files.append((src, target))
    return files


def _digest(steps: ImageSteps, files: list[tuple[Path, str]]) -> str:
    # Like a Docker layer cache for the dependencies: the environment is reused while the
    # interpreter, the pip line and the project metadata stay the same. The project itself is
    # reinstalled from the current tree on every run (see `ensure_image_venv`).
    h = hashlib.sha256()
    h.update(f"py{sys.version_info[:2]}|{steps.pip_install}".encode())
    for src, target in files:
        if not target.startswith(("app/", "./app/")):
            h.update(target.encode() + b"\0" + src.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def ensure_image_venv(steps: ImageSteps) -> Path:
    """The venv directory (its bin/ holds gunicorn and python) with the current tree installed.

    The first build for a given set of dependencies creates the venv; every call then runs the
    Dockerfile's pip line again in a fresh copy of the build context, which reinstalls the
    project from the current files (pip always rebuilds a local directory requirement).
    """
    files = _context_files(steps)
    py = f"py{sys.version_info[0]}{sys.version_info[1]}"
    path = cache_root() / f"image-venv-{py}-{_digest(steps, files)}"
    with file_lock(path.with_suffix(".lock")):
        if not (path / _MARKER).exists():
            shutil.rmtree(path, ignore_errors=True)
            venv.EnvBuilder(with_pip=True, clear=True).create(path)
        with tempfile.TemporaryDirectory(prefix="opsml-image-context-") as context:
            for src, target in files:
                dest = Path(context) / target
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest)
            subprocess.run(
                [
                    str(path / "bin" / "python"),
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    *steps.pip_install,
                ],
                cwd=context,
                check=True,
                timeout=_BUILD_TIMEOUT_S,
            )
        (path / _MARKER).write_text(" ".join(steps.pip_install))
        _prune_others(path)
    return path


def _prune_others(keep: Path) -> None:
    """Older image venvs are stale by construction (their digest no longer matches)."""
    for other in keep.parent.glob("image-venv-*"):
        if other.name.startswith(keep.name):
            continue
        if other.is_dir():
            shutil.rmtree(other, ignore_errors=True)
        elif other.suffix == ".lock":
            other.unlink(missing_ok=True)
