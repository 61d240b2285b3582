"""The local storage root: who may create it, and whether it is still the one we started on.

A configured local root is usually a mounted volume. If the server created a missing root,
or the folders above a file, whenever it found the root gone, an unmounted volume would be
silently replaced by a folder on the node's own disk: uploads would succeed and vanish with
the pod. So only the embedded default (`./opsml_data/artifacts`) is created, once, at start;
any other root must exist. At start we also record the root's identity (device and inode):
an unmounted volume leaves its mount point behind on another device. Writes, reads and
readiness compare against it, so the server reports "storage unavailable" instead of writing
beside the volume. After a deliberate remount, restart the server to adopt the new root. (A
folder deleted and re-created on the same disk may get the same inode back and then counts
as the same root: it is on the same filesystem, so nothing is written beside a volume.)
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from app.errors import ConfigError, UnavailableError

LOCAL_MISSING: Final = (
    "OPSML_STORAGE_URI points at {path}, which does not exist: create it or mount its volume "
    "(only the default ./opsml_data/artifacts is created by the server)"
)
LOCAL_NOT_DIR: Final = "OPSML_STORAGE_URI points at {path}, which is not a creatable directory"
ERR_ROOT_MISSING: Final = (
    "Storage root is missing (unmounted volume or deleted folder); nothing was read or written"
)
ERR_ROOT_REPLACED: Final = (
    "Storage root is not the folder the server started on (its volume was unmounted or "
    "replaced); restart the server once the right volume is mounted"
)
ERR_ROOT_READ_ONLY: Final = "Storage root is read-only or not writable by the server"

# A probe file in the root (hidden; O_TMPFILE leaves no name at all where Linux supports it).
_PROBE_PREFIX: Final = ".opsml-ready-"


@dataclass(frozen=True)
class LocalRoot:
    path: str  # absolute, posix, no trailing slash
    device: int
    inode: int

    def check(self) -> None:
        """Raise `UnavailableError` unless the root is still the directory seen at start."""
        try:
            found = os.stat(self.path)
        except FileNotFoundError:
            raise UnavailableError(ERR_ROOT_MISSING) from None
        except OSError as exc:
            raise UnavailableError(f"{ERR_ROOT_MISSING} ({type(exc).__name__})") from None
        if (found.st_dev, found.st_ino) != (self.device, self.inode):
            raise UnavailableError(ERR_ROOT_REPLACED)

    def check_writable(self) -> None:
        """Readiness: the root is ours and a file can be created in it."""
        self.check()
        try:
            with tempfile.TemporaryFile(dir=self.path, prefix=_PROBE_PREFIX):
                pass
        except OSError:
            raise UnavailableError(ERR_ROOT_READ_ONLY) from None


def open_root(path: str, *, create: bool) -> LocalRoot:
    """Resolve the root and record its identity; create it only when `create` is set."""
    root = Path(os.path.expanduser(path)).resolve()
    if create:
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError:
            raise ConfigError(LOCAL_NOT_DIR.format(path=root)) from None
    elif not root.exists():
        raise ConfigError(LOCAL_MISSING.format(path=root))
    if not root.is_dir():
        raise ConfigError(LOCAL_NOT_DIR.format(path=root))
    found = root.stat()
    return LocalRoot(path=root.as_posix(), device=found.st_dev, inode=found.st_ino)
