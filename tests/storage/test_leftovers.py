"""The sweep of partial uploads: abandoned ones go with the folders they leave empty; live,
recent and unrelated files stay, and so does the root."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.storage import leftovers
from app.storage.leftovers import create_held, partial_path, release, sweep

HOUR = 3600.0


def _abandoned(final: Path, size: int = 1000, age_s: float = HOUR) -> Path:
    final.parent.mkdir(parents=True, exist_ok=True)
    path = Path(partial_path(final.as_posix()))
    path.write_bytes(b"x" * size)
    past = time.time() - age_s
    os.utime(path, (past, past))
    return path


def test_abandoned_partial_uploads_and_their_empty_folders_go(tmp_path: Path) -> None:
    root = tmp_path / "root"
    version = root / "OPSML_MODEL_REGISTRY" / "repo" / "model" / "v1.0.0"
    one = _abandoned(version / "model.bin", size=4096)
    two = _abandoned(version / "nested" / "deeper" / "card.json", size=10)
    result = sweep(root.as_posix())
    assert (result.files, result.bytes, result.in_flight) == (2, 4106, 0)
    assert not one.exists() and not two.exists()
    assert list(root.iterdir()) == []  # every folder they made is gone, the root is not
    assert result.folders == 6


def test_finished_files_recent_partials_and_their_folders_stay(tmp_path: Path) -> None:
    root = tmp_path / "root"
    version = root / "OPSML_DATA_REGISTRY" / "repo" / "data" / "v1.0.0"
    version.mkdir(parents=True)
    (version / "data.bin").write_bytes(b"kept")
    (version / ".hidden-by-the-user").write_bytes(b"kept")
    recent = _abandoned(root / "OPSML_DATA_REGISTRY" / "r" / "n" / "v2.0.0" / "f", age_s=5)
    old = _abandoned(version / "other.bin")
    result = sweep(root.as_posix())
    assert (result.files, result.folders, result.in_flight) == (1, 0, 1)
    assert not old.exists()
    assert recent.exists()  # younger than MIN_AGE_S: may be an upload about to lock it
    assert (version / "data.bin").read_bytes() == b"kept"
    assert (version / ".hidden-by-the-user").exists()


def test_an_upload_in_flight_is_never_touched_however_old(tmp_path: Path) -> None:
    root = tmp_path / "root"
    final = root / "OPSML_DATA_REGISTRY" / "repo" / "data" / "v1.0.0" / "data.bin"
    final.parent.mkdir(parents=True)
    path = partial_path(final.as_posix())
    fd = create_held(path)
    try:
        os.write(fd, b"streaming")
        past = time.time() - 10 * HOUR
        os.utime(path, (past, past))
        result = sweep(root.as_posix())
        assert (result.files, result.folders, result.in_flight) == (0, 0, 1)
        assert Path(path).exists()
    finally:
        release(fd)
    assert sweep(root.as_posix()).files == 1  # once released, it is abandoned
    assert not (root / "OPSML_DATA_REGISTRY").exists()


def test_a_lock_held_by_another_process_protects_its_file(tmp_path: Path) -> None:
    # What two gunicorn workers (or pods on one NFS volume) see: the lock is per process.
    root = tmp_path / "root"
    final = root / "OPSML_DATA_REGISTRY" / "repo" / "data" / "v1.0.0" / "data.bin"
    final.parent.mkdir(parents=True)
    path = partial_path(final.as_posix())
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from app.storage.leftovers import create_held\n"
            f"create_held({path!r})\n"
            "print('held', flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        past = time.time() - HOUR
        os.utime(path, (past, past))
        assert sweep(root.as_posix()).in_flight == 1
        assert Path(path).exists()
        holder.kill()  # SIGKILL: the kernel drops the lock, as when a worker is killed
        holder.wait(10)
        assert sweep(root.as_posix()).files == 1
        assert not Path(path).exists()
    finally:
        holder.kill()
        holder.wait(10)


@pytest.mark.parametrize("name", ["data.upload-1.bin", ".data.bin", "x.upload-abc"])
def test_only_hidden_partial_names_count(name: str) -> None:
    assert not leftovers.is_partial_upload(f"/root/a/{name}")
    assert leftovers.is_partial_upload(partial_path(f"/root/a/{name}"))
