"""Virtual environments for every released opsml 2.x client (the client matrix).

`requirements-matrix.txt` groups the releases by the dependencies they accept. Each group gets
one cached *dependency* venv (numpy, pandas, scikit-learn, ... and opsml-cli, without opsml);
each release gets a thin venv made `--without-pip` that holds only its opsml wheel and sees the
group's packages through a `.pth` file. So sixteen clients cost three full installs (about 700
MB each) plus sixteen wheels of a few MB, and `pip check` still proves that each release's
requirements are met by its group's pins.

Everything lives under `venvs.cache_root()`, keyed by the pins (a digest of the group's
section, and the release), with the same file lock and `.complete` marker as `venvs.py`.
At most `MAX_PIP` pip processes run at once: the machine has two cores.

    python -m tests.compat.client_matrix [2.0.0 2.2.4 ...]   # build ahead; prints the cost
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests.compat import venvs
from tests.support.locks import file_lock

REQUIREMENTS = Path(__file__).resolve().parent / "requirements-matrix.txt"
MAX_PIP = 2
SMOKE = "import opsml, sklearn, pandas; from opsml import CardRegistry; print(opsml.__version__)"
_SECTION = re.compile(r"^\[(?P<name>[\w.-]+)\]$")
_MARKER = ".complete"


@dataclass(frozen=True)
class DepsGroup:
    name: str
    releases: tuple[str, ...]
    pins: tuple[str, ...]

    @property
    def digest(self) -> str:
        return hashlib.sha256("\n".join(self.pins).encode()).hexdigest()[:10]


@dataclass(frozen=True)
class ClientVenv:
    release: str
    path: Path
    deps: Path  # the group's dependency venv (opsml-cli's binary is in its bin/)

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def opsml_cli(self) -> Path:
        return self.deps / "bin" / "opsml-cli"


def read_groups(path: Path = REQUIREMENTS) -> list[DepsGroup]:
    groups: list[DepsGroup] = []
    name, releases, pins = "", "", []
    for raw in [*path.read_text().splitlines(), "[end]"]:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if match := _SECTION.match(line):
            if name:
                groups.append(DepsGroup(name, tuple(releases.split()), tuple(pins)))
            name, releases, pins = match["name"], "", []
        elif line.startswith("opsml:"):
            releases = line.removeprefix("opsml:")
        else:
            pins.append(line)
    return groups


def releases() -> list[str]:
    """Every 2.x release in the matrix, oldest first."""
    found = [release for group in read_groups() for release in group.releases]
    return sorted(found, key=lambda v: tuple(int(p) for p in v.split(".")))


def group_of(release: str) -> DepsGroup:
    for group in read_groups():
        if release in group.releases:
            return group
    raise KeyError(f"opsml {release} is not in {REQUIREMENTS.name}")


def _py_tag(python: str) -> str:
    out = subprocess.run(
        [python, "-c", "import sys; print('%d%d' % sys.version_info[:2])"],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def _built(path: Path, log: Path, build: object) -> None:
    """Run `build()` under the venv's lock unless a complete build is already there."""
    if (path / _MARKER).exists():
        return
    with file_lock(path.parent / f"{path.name}.lock", 1800.0):
        if (path / _MARKER).exists():
            return
        shutil.rmtree(path, ignore_errors=True)
        log.write_text("")
        started = time.monotonic()
        build()  # type: ignore[operator]
        info = {"seconds": round(time.monotonic() - started, 1), "built_at": time.ctime()}
        (path / _MARKER).write_text(json.dumps(info))


def _deps_venv(group: DepsGroup, root: Path, python: str) -> Path:
    path = root / f"{group.name}-py{_py_tag(python)}-{group.digest}"
    log = root / f"{path.name}.log"

    def build() -> None:
        pins = root / f"{path.name}.txt"
        pins.write_text("\n".join(group.pins) + "\n")
        venvs._run([python, "-m", "venv", str(path)], log)
        pip = [str(path / "bin" / "python"), "-m", "pip", "install", "--no-input", "--quiet"]
        venvs._run([*pip, "--disable-pip-version-check", "-r", str(pins)], log)

    _built(path, log, build)
    return path


def _client_venv(release: str, deps: Path, root: Path, python: str) -> ClientVenv:
    group = group_of(release)
    path = root / f"client-opsml{release}-py{_py_tag(python)}-{group.digest}"
    log = root / f"{path.name}.log"
    venv = ClientVenv(release, path, deps)
    deps_python = str(deps / "bin" / "python")

    def build() -> None:
        venvs._run([python, "-m", "venv", "--without-pip", str(path)], log)
        site = subprocess.run(
            [str(venv.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        deps_site = subprocess.run(
            [deps_python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        Path(site, "_opsml_matrix_deps.pth").write_text(deps_site + "\n")
        pip = [deps_python, "-m", "pip", "--python", str(venv.python)]
        quiet = ["--no-input", "--quiet", "--disable-pip-version-check"]
        venvs._run([*pip, "install", *quiet, "--no-deps", f"opsml=={release}"], log)
        venvs._run([*pip, "check"], log)  # the group's pins satisfy this release
        venvs._run([str(venv.python), "-c", SMOKE], log)

    _built(path, log, build)
    return venv


def ensure(wanted: list[str] | None = None) -> dict[str, ClientVenv]:
    """The client venvs of `wanted` releases (default: all), building what is missing."""
    chosen = wanted or releases()
    root = venvs.cache_root()
    root.mkdir(parents=True, exist_ok=True)
    python = venvs._base_python()
    groups = {group_of(release).name: group_of(release) for release in chosen}
    with ThreadPoolExecutor(max_workers=MAX_PIP) as pool:
        made = pool.map(lambda g: _deps_venv(g, root, python), groups.values())
        deps = dict(zip(groups, made, strict=True))
        built = pool.map(lambda r: _client_venv(r, deps[group_of(r).name], root, python), chosen)
        return {venv.release: venv for venv in built}


def main(argv: list[str]) -> int:
    started = time.monotonic()
    for release, venv in ensure(argv or None).items():
        print(f"opsml {release}: {venv.path}")
    print(f"all ready after {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
