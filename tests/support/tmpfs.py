"""Tiny real filesystems for storage faults: a tmpfs of a few MiB, read-only, or unmounted.

Mounting needs root (the suite runs as root: `tests/production/pgcluster.py` switches to the
postgres user). A mount that cannot be made is an error, never a skip.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _mount(*argv: str) -> None:
    proc = subprocess.run(["mount", *argv], capture_output=True, text=True, timeout=30, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"mount {' '.join(argv)} failed: {proc.stderr.strip()}")


def unmount(target: Path) -> None:
    proc = subprocess.run(
        ["umount", str(target)], capture_output=True, text=True, timeout=30, check=False
    )
    if proc.returncode != 0:
        # Busy (a test still holds a file open): detach now, freed when the last user closes.
        subprocess.run(["umount", "-l", str(target)], capture_output=True, timeout=30, check=True)


def is_mounted(target: Path) -> bool:
    mounts = Path("/proc/self/mounts").read_text().splitlines()
    return any(line.split()[1] == str(target) for line in mounts)


def make_read_only(target: Path) -> None:
    _mount("-o", "remount,ro", str(target))


@contextmanager
def tmpfs(target: Path, size_kib: int) -> Iterator[Path]:
    """A fresh tmpfs of `size_kib` KiB mounted on `target` (created), unmounted afterwards."""
    target.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size_kib}k,mode=0755", "tmpfs", str(target))
    try:
        yield target
    finally:
        if is_mounted(target):
            unmount(target)
