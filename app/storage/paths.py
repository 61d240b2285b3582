"""The only place that turns client paths into storage paths, and back.

Clients name artifacts as `opsml-root:/<TABLE>/<repo>/<name>/v<ver>/<file>`. We map that prefix
onto the storage root and refuse anything that could leave it: `..` segments, absolute or
drive paths, backslashes, NUL and other control characters. Refusing (4xx) rather than quietly
normalising means a hostile or buggy client learns at once what is wrong.
"""

from __future__ import annotations

from app.errors import InvalidPathError

OPSML_ROOT = "opsml-root:"
MAX_PATH_LENGTH = 1024
MAX_SEGMENT_LENGTH = 255

ERR_NOT_OPSML_ROOT = "Path must start with 'opsml-root:/' (got a path outside the registry)"
ERR_PARENT_SEGMENT = "Path must not contain '..' segments"
ERR_BAD_CHARACTER = "Path must not contain backslashes, NUL or other control characters"
ERR_TOO_LONG = (
    f"Path is longer than {MAX_PATH_LENGTH} characters or has a segment over {MAX_SEGMENT_LENGTH}"
)
ERR_EMPTY = "Path is empty"


def relative_parts(client_path: str) -> list[str]:
    """Validate an `opsml-root:` path and return its segments below the root."""
    if not client_path:
        raise InvalidPathError(ERR_EMPTY)
    if len(client_path) > MAX_PATH_LENGTH:
        raise InvalidPathError(ERR_TOO_LONG)
    if "\\" in client_path or any(ord(ch) < 32 or ord(ch) == 127 for ch in client_path):
        raise InvalidPathError(ERR_BAD_CHARACTER)
    if not client_path.startswith(OPSML_ROOT):
        raise InvalidPathError(ERR_NOT_OPSML_ROOT)
    parts = [part for part in client_path[len(OPSML_ROOT) :].split("/") if part not in ("", ".")]
    if any(part == ".." for part in parts):
        raise InvalidPathError(ERR_PARENT_SEGMENT)
    if any(len(part) > MAX_SEGMENT_LENGTH for part in parts):
        raise InvalidPathError(ERR_TOO_LONG)
    return parts


def to_storage_path(root: str, client_path: str) -> str:
    """`opsml-root:/a/b` -> `<root>/a/b` (fs-native, no trailing slash)."""
    parts = relative_parts(client_path)
    return "/".join([root, *parts]) if parts else root


def to_client_path(root: str, storage_path: str) -> str:
    """`<root>/a/b` -> `opsml-root:/a/b`; the inverse of `to_storage_path`."""
    normalized = storage_path.rstrip("/")
    if normalized == root:
        return f"{OPSML_ROOT}/"
    prefix = root.rstrip("/") + "/"
    if not normalized.startswith(prefix):
        # fsspec returned something outside the root: a bug, never show it to the client.
        raise InvalidPathError(ERR_NOT_OPSML_ROOT)
    return f"{OPSML_ROOT}/{normalized[len(prefix) :]}"
