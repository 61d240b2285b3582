"""Domain errors, designed once.

Services and the storage layer raise these and know nothing of HTTP; `app.main` maps each
class to one status code in a single exception handler. Messages are written for the user who
will read them in the client's traceback, and never contain a secret.

    OpsmlServerError
    ├── ConfigError            bad environment at start-up (the CLI prints one line and exits)
    ├── InvalidRequestError    400 / 422: the request is well-formed HTTP but wrong
    │   └── InvalidPathError   a storage path outside the root or not an opsml-root: path
    ├── NotFoundError          404
    ├── ConflictError          409: e.g. a card version that already exists
    ├── AuthError              401 / 403
    ├── UnavailableError       503: database or storage unreachable
    └── InsufficientStorageError  507: storage is full; the request may work once space is freed
"""

from __future__ import annotations


class OpsmlServerError(Exception):
    """Base of every error this server raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(OpsmlServerError):
    """The environment is wrong; the message names the variable and what is wrong with it."""


class InvalidRequestError(OpsmlServerError):
    """The client sent something we cannot act on."""


class InvalidPathError(InvalidRequestError):
    """A storage path that is not under the storage root."""


class NotFoundError(OpsmlServerError):
    """The thing asked for does not exist."""


class ConflictError(OpsmlServerError):
    """The request collides with existing state."""


class AuthError(OpsmlServerError):
    """Missing or wrong credentials."""

    def __init__(self, message: str, *, forbidden: bool = False) -> None:
        super().__init__(message)
        self.forbidden = forbidden


class UnavailableError(OpsmlServerError):
    """A dependency (database, storage) cannot be reached right now."""


class InsufficientStorageError(OpsmlServerError):
    """Storage has no space (or quota) left for the write."""
