"""The venv cache: one build per spec, shared by concurrent callers, reused afterwards."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.compat import venvs

pytestmark = pytest.mark.compat


def test_concurrent_callers_share_one_build(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements-tiny.txt"
    requirements.write_text("# nothing to install: the build is just a venv\n")
    spec = venvs.VenvSpec("tiny", requirements, "import json")
    root = tmp_path / "cache"

    with ThreadPoolExecutor(max_workers=3) as pool:
        built = list(pool.map(lambda _: venvs.build(spec, root), range(3)))

    assert len({venv.path for venv in built}) == 1
    venv = built[0]
    assert venv.python.exists()
    assert venv.path.name.startswith("tiny-opsml2.2.4-py3")
    log = (root / f"{venv.path.name}.log").read_text()
    assert log.count(" -m venv ") == 1, log  # built once, the other callers waited and reused it
    info = venv.build_info()
    assert venvs.build(spec, root).build_info() == info  # cached: not rebuilt

    # A half-finished build (no marker) is wiped and redone.
    (venv.path / ".complete").unlink()
    rebuilt = venvs.build(spec, root)
    assert rebuilt.path == venv.path
    assert json.loads((rebuilt.path / ".complete").read_text())["built_at"] >= info["built_at"]

    # Changed pins name another environment (checked by key: a third build is slow).
    requirements.write_text("# changed\n")
    assert venvs._key(spec, venvs._base_python()) != venv.path.name
