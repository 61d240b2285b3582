"""Partial uploads on local storage: their names, the lock that marks them live, the sweep.

A local upload writes `.<name>.upload-<hex>` beside its final name and renames it into place
(`app.storage.store.ArtifactWriter`). A worker killed mid-upload (SIGKILL, out of memory, a
lost node) never removes that file, nor the version folder it created. So:
- the writer holds a shared `flock` on its temporary file while it writes; the kernel drops
  it when the process dies, however it dies (NFSv4 carries such locks to other clients);
- `sweep` removes a temporary file only if it can take that lock exclusively (nobody is
  writing it) and the file is older than `MIN_AGE_S` (which covers the instant between
  creating the file and locking it), then the folders that removal left empty, up to but
  never including the storage root.
The server sweeps at start, in the background; `opsml-server clean-uploads` does it on demand.
Object stores need none of this: an unfinished multipart upload publishes no object (expire
the parts with the bucket's lifecycle rule for incomplete multipart uploads).
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
import uuid
from dataclasses import dataclass
from typing import Final

log = logging.getLogger(__name__)

PARTIAL_MARK: Final = ".upload-"
MIN_AGE_S: Final = 60.0


def partial_path(final_path: str) -> str:
    """The hidden temporary name beside `final_path` that a local upload writes first."""
    parent, _, name = final_path.rpartition("/")
    return f"{parent}/.{name}{PARTIAL_MARK}{uuid.uuid4().hex}"


def is_partial_upload(path: str) -> bool:
    name = path.rstrip("/").rpartition("/")[2]
    return name.startswith(".") and PARTIAL_MARK in name


def create_held(path: str) -> int:
    """Create `path` (it must not exist) and hold it: the returned descriptor carries the lock."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
    except BaseException:
        os.close(fd)
        raise
    return fd


def release(fd: int) -> None:
    os.close(fd)  # closing drops the lock


@dataclass(frozen=True)
class SweepResult:
    files: int = 0
    folders: int = 0
    bytes: int = 0
    in_flight: int = 0


def sweep(root: str, *, min_age_s: float = MIN_AGE_S, now: float | None = None) -> SweepResult:
    """Remove abandoned partial uploads under `root` and the folders they leave empty."""
    older_than = (time.time() if now is None else now) - min_age_s
    files = size = in_flight = 0
    emptied: set[str] = set()
    for folder, _dirs, names in os.walk(root):
        for name in names:
            if not is_partial_upload(name):
                continue
            removed = _remove_if_abandoned(f"{folder}/{name}", older_than)
            if removed is None:
                in_flight += 1
                continue
            files += 1
            size += removed
            emptied.add(folder)
    folders = sum(_prune_upwards(root, folder) for folder in sorted(emptied, reverse=True))
    return SweepResult(files=files, folders=folders, bytes=size, in_flight=in_flight)


def _remove_if_abandoned(path: str, older_than: float) -> int | None:
    """Unlink `path` if nobody holds it and it is old; its size, or None if it is kept."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None  # gone already, or a symlink: not ours to touch
    try:
        found = os.fstat(fd)
        if found.st_mtime > older_than:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None  # a live upload holds it
        os.unlink(path)
        return found.st_size
    except FileNotFoundError:
        return None
    finally:
        os.close(fd)


def _prune_upwards(root: str, folder: str) -> int:
    """rmdir `folder` and its parents while they are empty, stopping below `root`.

    rmdir refuses a folder that is not empty, so one that an upload has just put a file in
    stays. (An upload that made its folders and is a moment from creating its file there
    loses that race and gets a 409, which the client retries.)
    """
    removed = 0
    prefix = root.rstrip("/") + "/"
    while folder.startswith(prefix):
        try:
            os.rmdir(folder)
        except OSError:
            break
        removed += 1
        folder = folder.rpartition("/")[0]
    return removed


def sweep_and_log(root: str) -> SweepResult:
    """`sweep`, never raising (start-up must not fail over it), with one log line."""
    try:
        result = sweep(root)
    except Exception as exc:
        log.warning("partial upload sweep failed", extra={"fields": {"error": type(exc).__name__}})
        return SweepResult()
    log.info(
        "partial upload sweep done",
        extra={
            "fields": {
                "removed_files": result.files,
                "removed_folders": result.folders,
                "removed_bytes": result.bytes,
                "in_flight": result.in_flight,
            }
        },
    )
    return result
