"""Partial uploads of killed workers are removed when the server starts, or on demand with
`opsml-server clean-uploads`; a live upload is left alone."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from app.cli import main
from app.storage.leftovers import create_held, partial_path, release
from tests.conftest import ClientFactory

HOUR = 3600.0


def _leftover(root: Path, name: str, *, held: bool = False) -> tuple[Path, int | None]:
    final = root / "OPSML_MODEL_REGISTRY" / "repo" / name / "v1.0.0" / "model.bin"
    final.parent.mkdir(parents=True)
    path = partial_path(final.as_posix())
    fd = create_held(path)
    os.write(fd, b"half an upload")
    past = time.time() - HOUR
    os.utime(path, (past, past))
    if not held:
        release(fd)
        return Path(path), None
    return Path(path), fd


def test_start_up_removes_what_killed_uploads_left(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    root = tmp_path / "artifacts"
    root.mkdir()
    dead, _ = _leftover(root, "killed")
    live, fd = _leftover(root, "streaming", held=True)
    try:
        client = make_client()
        deadline = time.monotonic() + 10
        while (root / "OPSML_MODEL_REGISTRY" / "repo" / "killed").exists():
            assert time.monotonic() < deadline, "leftover not swept at start-up"
            time.sleep(0.05)
        assert not dead.exists()
        assert live.exists()
        listed = client.get("/opsml/files/list", params={"path": "opsml-root:/"}).json()
        assert listed == {"files": []}  # partial files are never listed
    finally:
        assert fd is not None
        release(fd)


def test_clean_uploads_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "artifacts"
    root.mkdir()
    dead, _ = _leftover(root, "killed")
    live, fd = _leftover(root, "streaming", held=True)
    monkeypatch.setenv("OPSML_STORAGE_URI", str(root))
    monkeypatch.setenv("OPSML_TRACKING_URI", f"sqlite:///{tmp_path / 'opsml.db'}")
    try:
        with pytest.raises(SystemExit) as exited:
            main(["clean-uploads"])
        assert exited.value.code == 0
        out = capsys.readouterr().out
        assert "removed 1 partial upload(s) (14 bytes) and 2 empty folder(s)" in out
        assert "1 in flight or recent, kept" in out
        assert not dead.exists() and live.exists()
    finally:
        assert fd is not None
        release(fd)
