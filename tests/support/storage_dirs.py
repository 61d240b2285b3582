"""Local storage roots for tests: a configured root must exist (only the default is created)."""

from __future__ import annotations

from pathlib import Path


def storage_dir(path: Path) -> str:
    """`path` created (with its parents) and returned as an OPSML_STORAGE_URI value."""
    path.mkdir(parents=True, exist_ok=True)
    return str(path)
