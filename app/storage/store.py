"""Artifact I/O on the storage root: bounded streaming, atomic writes, errors made clear.

Routers hand this module `opsml-root:` paths only; it maps them through `app.storage.paths`.
Every method is synchronous and is called from a worker thread, never the event loop.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, BinaryIO

from fsspec import AbstractFileSystem

from app.errors import (
    ConflictError,
    InsufficientStorageError,
    InvalidPathError,
    NotFoundError,
    OpsmlServerError,
    UnavailableError,
)
from app.storage import leftovers, paths
from app.storage.backends import StorageLocation
from app.storage.delete_scope import check_deletable
from app.storage.leftovers import partial_path

log = logging.getLogger(__name__)

# File handles (`open_for_read`) serve local downloads and small reads on every backend; object
# store downloads go through `app.storage.object_stream` instead. Locally 1 MiB chunks move a
# GiB in ~1,000 thread hops while keeping each request's buffer small. From an object store
# each chunk is a ranged GET, so chunks are larger there: fewer requests.
CHUNK_SIZE = 1024 * 1024
REMOTE_CHUNK_SIZE = 2 * 1024 * 1024
# One ranged GET per chunk, read ahead by one chunk. gcsfs's default ("adaptive") prefetches
# several blocks concurrently: measured on fake-gcs-server, 128 MiB read at 340 MB/s holding
# 34 MB, against 470 MB/s holding 7 MB with readahead (one setting for every backend).
READ_CACHE = "readahead"


def read_chunk_size(location: StorageLocation) -> int:
    return CHUNK_SIZE if location.is_local else REMOTE_CHUNK_SIZE


ERR_NOT_FOUND = "No artifact at {path}"
ERR_STORAGE_DOWN = "Storage is unreachable or refused the request ({kind}); try again later"
ERR_WRITE_ROOT = "Upload path must name a file below opsml-root:/, not the root itself"
ERR_PATH_CONFLICT = "Cannot write {path}: a file and a directory would share a name"
ERR_STORAGE_FULL = (
    "Storage is full (no space or quota left) while writing {path}; nothing was stored. "
    "Free space on the storage volume, then upload again"
)
ERR_STORAGE_READ_ONLY = "Storage is read-only; {path} was not stored"
ERR_ALREADY_STORED = (
    "{path} already exists: a pre-signed PUT URL creates its artifact once and never replaces "
    "one (so a used URL cannot be replayed); delete the artifact first or use files/upload"
)
ERR_DELETED_DURING_UPLOAD = (
    "The folder of {path} was deleted while it was being uploaded, so nothing was stored; "
    "upload it again if the card still exists"
)

_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


def _unavailable(exc: Exception) -> UnavailableError:
    # Only the exception's class name reaches the client: SDK messages can carry signed URLs.
    log.warning("storage error: %s", type(exc).__name__)
    return UnavailableError(ERR_STORAGE_DOWN.format(kind=type(exc).__name__))


def _write_error(exc: Exception, client_path: str) -> OpsmlServerError:
    """A failed write, named for what happened: no space (507), read-only, or unreachable."""
    if isinstance(exc, OpsmlServerError):
        return exc
    if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
        log.warning("storage full: %s", errno.errorcode.get(exc.errno, "?"))
        return InsufficientStorageError(ERR_STORAGE_FULL.format(path=client_path))
    if isinstance(exc, OSError) and exc.errno == errno.EROFS:
        log.warning("storage read-only")
        return UnavailableError(ERR_STORAGE_READ_ONLY.format(path=client_path))
    return _unavailable(exc)


@contextmanager
def read_errors(client_path: str) -> Iterator[None]:
    """Opening `client_path` for reading: not there is NotFoundError, the rest Unavailable."""
    try:
        yield
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
        raise NotFoundError(ERR_NOT_FOUND.format(path=client_path)) from exc
    except Exception as exc:
        raise _unavailable(exc) from exc


class ArtifactWriter:
    """Writes one artifact so that it appears whole or not at all.

    Local storage writes a hidden temporary file and renames it into place. Object stores
    (S3 multipart, GCS resumable, Azure blocks) publish an object only when the upload is
    completed, so we write to the final key and abort the upload on failure.
    """

    def __init__(
        self,
        location: StorageLocation,
        final_path: str,
        client_path: str = "",
        *,
        replace: bool = True,
    ) -> None:
        self._location = location
        self._replace = replace
        self._client_path = client_path or final_path
        self._final_path = final_path
        self._write_path = partial_path(final_path) if location.is_local else final_path
        self._handle: Any = None
        self._lock: int | None = None  # holds a local temporary file while we write it
        self.bytes_written = 0

    def open(self) -> None:
        try:
            self._open()
        except BaseException:
            self.abort()  # no temporary file or lock is left behind by a failed open
            raise

    def _open(self) -> None:
        fs = self._location.fs
        try:
            if self._location.local_root is not None:
                self._make_parents(self._location.local_root.path)
                self._lock = leftovers.create_held(self._write_path)
            self._handle = fs.open(self._write_path, "wb")
        except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
            # A parent of the path is a file (or the path a directory): the client's mistake.
            raise ConflictError(ERR_PATH_CONFLICT.format(path=self._client_path)) from exc
        except FileNotFoundError as exc:
            # The folders were just made: a delete of this folder ran in between.
            raise ConflictError(ERR_DELETED_DURING_UPLOAD.format(path=self._client_path)) from exc
        except Exception as exc:
            raise _write_error(exc, self._client_path) from exc

    def _make_parents(self, root: str) -> None:
        # The root itself is never created here (see app.storage.local_root), only below it.
        assert self._location.local_root is not None
        self._location.local_root.check()
        # One level at a time from the root down: os.mkdir fails if the root vanished
        # meanwhile, where os.makedirs would re-create it.
        folder = root
        for part in self._final_path[len(root) + 1 :].split("/")[:-1]:
            folder = f"{folder}/{part}"
            try:
                os.mkdir(folder)
            except FileExistsError:
                if not os.path.isdir(folder):
                    raise

    def write(self, views: Sequence[memoryview]) -> None:
        try:
            for view in views:
                self._handle.write(view)
        except Exception as exc:
            self.abort()
            raise _write_error(exc, self._client_path) from exc
        self.bytes_written += sum(view.nbytes for view in views)

    def commit(self) -> None:
        try:
            self._handle.close()
            if self._write_path != self._final_path:
                self._publish()
            self._release()
        except FileExistsError as exc:
            self.abort()
            raise ConflictError(ERR_ALREADY_STORED.format(path=self._client_path)) from exc
        except FileNotFoundError as exc:
            # The temporary file went with its folder: a delete raced this upload.
            self.abort()
            raise ConflictError(ERR_DELETED_DURING_UPLOAD.format(path=self._client_path)) from exc
        except Exception as exc:
            self.abort()
            raise _write_error(exc, self._client_path) from exc

    def _publish(self) -> None:
        # os.replace, not fs.mv: fsspec's move re-creates a deleted folder first.
        if self._replace:
            os.replace(self._write_path, self._final_path)
            return
        # Create-only: link() fails if the name exists, atomically, so of two writers (or a
        # replayed URL) exactly one stores the artifact.
        os.link(self._write_path, self._final_path)
        os.unlink(self._write_path)

    def _release(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            leftovers.release(lock)

    def abort(self) -> None:
        """Leave nothing behind; never raises."""
        handle, self._handle = self._handle, None
        try:
            if handle is not None and self._location.is_local:
                handle.close()
            elif handle is not None:
                # Cancel the multipart/resumable upload, then mark the file closed so that
                # garbage collection does not flush (and so publish) the partial object.
                handle.discard()
                handle.closed = True
            if self._location.is_local and self._location.fs.exists(self._write_path):
                self._location.fs.rm(self._write_path)
        except Exception as exc:  # cleanup is best effort: the upload has failed already
            log.warning("could not clean up an aborted upload: %s", type(exc).__name__)
        finally:
            self._release()


class ArtifactStore:
    """Artifact operations on `opsml-root:` paths."""

    def __init__(self, location: StorageLocation) -> None:
        self.location = location

    @property
    def fs(self) -> AbstractFileSystem:
        return self.location.fs

    def storage_path(self, client_path: str) -> str:
        return paths.to_storage_path(self.location.root, client_path)

    def storage_uri(self, client_path: str) -> str:
        """The path as the backend names it: absolute locally, `<scheme>://...` in a bucket."""
        path = self.storage_path(client_path)
        return path if self.location.is_local else f"{self.location.scheme}://{path}"

    def _check_root(self) -> None:
        # A stat per request: a missing or replaced local root is a 503, not an empty listing.
        if self.location.local_root is not None:
            self.location.local_root.check()

    def writer(self, client_path: str, *, replace: bool = True) -> ArtifactWriter:
        """A writer for one artifact; with `replace=False` (local storage) it only creates."""
        path = self.storage_path(client_path)
        if path == self.location.root:
            raise InvalidPathError(ERR_WRITE_ROOT)
        # Locally a file cannot replace a directory (the rename would move it inside one).
        # Object stores have no such clash, and checking would cost a request per upload.
        if self.location.is_local and self.fs.isdir(path):
            raise ConflictError(ERR_PATH_CONFLICT.format(path=client_path))
        if not replace and self.location.is_local and self.fs.exists(path):
            raise ConflictError(ERR_ALREADY_STORED.format(path=client_path))  # before the body
        return ArtifactWriter(self.location, path, client_path, replace=replace)

    def _file(self, client_path: str) -> tuple[str, int | None]:
        """The storage path and size of a file; NotFoundError for a missing file or a directory."""
        path = self.storage_path(client_path)
        self._check_root()
        with read_errors(client_path):
            info = self.fs.info(path)
            if info.get("type") != "file":
                raise FileNotFoundError(path)
        size = info.get("size")
        return path, int(size) if size is not None else None

    def open_for_read(self, client_path: str) -> tuple[BinaryIO, int | None]:
        """Open a file for streaming; raises NotFoundError for a missing file or a directory."""
        path, size = self._file(client_path)
        with read_errors(client_path):
            chunk = read_chunk_size(self.location)
            handle = self.fs.open(path, "rb", block_size=chunk, cache_type=READ_CACHE)
        return handle, size

    def file_size(self, client_path: str) -> int | None:
        """A file's size (for HEAD); NotFoundError for a missing file or a directory."""
        return self._file(client_path)[1]

    def stream(self, client_path: str) -> tuple[Generator[bytes, None, None], int | None]:
        """The file in `read_chunk_size` pieces, and its size when the backend knows it."""
        handle, size = self.open_for_read(client_path)
        return _iter_handle(handle, read_chunk_size(self.location)), size

    def list_files(self, client_path: str) -> list[str]:
        """Every file under a path (recursively), as `opsml-root:` paths; a file lists itself."""
        path = self.storage_path(client_path)
        self._check_root()
        try:
            found = self.fs.find(path)
        except FileNotFoundError:
            return []
        except Exception as exc:
            raise _unavailable(exc) from exc
        root = self.location.root
        return sorted(
            paths.to_client_path(root, self._strip_protocol(item))
            for item in found
            if not leftovers.is_partial_upload(item)
        )

    def exists(self, client_path: str) -> bool:
        path = self.storage_path(client_path)
        self._check_root()
        try:
            return bool(self.fs.exists(path))
        except Exception as exc:
            raise _unavailable(exc) from exc

    def delete(self, client_path: str) -> None:
        """Remove a file or a card version's folder; deleting what is not there succeeds."""
        check_deletable(paths.relative_parts(client_path), client_path)
        path = self.storage_path(client_path)
        self._check_root()
        try:
            if self.fs.exists(path):
                self.fs.rm(path, recursive=True)
        except FileNotFoundError:
            return
        except Exception as exc:
            raise _unavailable(exc) from exc
        self.fs.invalidate_cache()

    def read_bytes(self, client_path: str, limit: int) -> bytes:
        """A small file whole (e.g. model metadata JSON); larger than `limit` is refused."""
        handle, size = self.open_for_read(client_path)
        with handle:
            data: bytes = handle.read(limit + 1)
        if (size is not None and size > limit) or len(data) > limit:
            raise UnavailableError(f"{client_path} is larger than {limit} bytes")
        return data

    def check_reachable(self) -> None:
        """Readiness: the root can be listed, and a local root is ours and writable."""
        if self.location.local_root is not None:
            self.location.local_root.check_writable()
            return
        try:
            self.fs.ls(self.location.root, detail=False)
        except FileNotFoundError:
            return  # an empty prefix in an object store simply has no objects yet
        except Exception as exc:
            raise _unavailable(exc) from exc

    def _strip_protocol(self, item: str) -> str:
        stripped = self.fs._strip_protocol(item)
        return stripped if isinstance(stripped, str) else str(stripped)


def _iter_handle(handle: BinaryIO, chunk_size: int) -> Generator[bytes, None, None]:
    try:
        while chunk := handle.read(chunk_size):
            yield chunk
    finally:
        handle.close()
