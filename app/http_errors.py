"""The one place where errors become HTTP responses.

Domain errors (`app.errors`) map to their status codes; database errors are sorted by
`app.db.failures` into "unavailable" (503: down, slow, refusing our login), "bad value" (400)
and the rest (500); request validation becomes 422 with
a short message. Logs carry exception class names only: driver messages can quote SQL,
parameters or connection strings.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app import errors
from app.db.failures import Kind, describe
from app.storage.upload import UploadTooLargeError

log = logging.getLogger("opsml_server")

ERR_DATABASE_DOWN = "The database is unreachable right now; try again shortly"
ERR_DATABASE_SLOW = "The database took too long to answer; try again shortly"
ERR_DATABASE = "The database refused the request"
ERR_DATABASE_DATA = (
    "The database cannot store a value of this request (e.g. a NUL character, invalid text "
    "or a number out of range)"
)
ERR_TEXT_ENCODING = "Request text must be valid Unicode (no unpaired surrogates)"


def _status_for(exc: errors.OpsmlServerError) -> int:
    if isinstance(exc, UploadTooLargeError):
        return 413
    if isinstance(exc, errors.AuthError):
        return 403 if exc.forbidden else 401
    return {
        errors.InvalidPathError: 400,
        errors.InvalidRequestError: 400,
        errors.NotFoundError: 404,
        errors.ConflictError: 409,
        errors.UnavailableError: 503,
        errors.InsufficientStorageError: 507,
        errors.ConfigError: 500,
    }.get(type(exc), 400 if isinstance(exc, errors.InvalidRequestError) else 500)


async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.OpsmlServerError)
    return JSONResponse({"detail": exc.message}, status_code=_status_for(exc))


async def _database_error(_: Request, exc: Exception) -> JSONResponse:
    # Driver messages can quote SQL and parameters: only classes and the SQLSTATE are logged.
    failure = describe(exc)
    log.warning(
        "database error",
        extra={
            "fields": {
                "error": type(exc).__name__,
                "sqlstate": failure.sqlstate,
                "reason": failure.reason,
                "unreachable": failure.kind is Kind.UNAVAILABLE,
            }
        },
    )
    if failure.kind is Kind.UNAVAILABLE:
        detail = ERR_DATABASE_SLOW if failure.slow else ERR_DATABASE_DOWN
        return JSONResponse({"detail": detail}, status_code=503)
    if failure.kind is Kind.BAD_VALUE:
        # SQLSTATE class 22 is "data exception": the value sent, not the server, is at fault.
        return JSONResponse({"detail": ERR_DATABASE_DATA}, status_code=400)
    return JSONResponse({"detail": ERR_DATABASE}, status_code=500)


async def _encoding_error(_: Request, exc: Exception) -> JSONResponse:
    # JSON may carry "\ud800"; such a string cannot be encoded for the database driver.
    log.warning("unencodable request text", extra={"fields": {"error": type(exc).__name__}})
    return JSONResponse({"detail": ERR_TEXT_ENCODING}, status_code=400)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]]
    return JSONResponse({"detail": "; ".join(problems)}, status_code=422)


async def _connection_error(_: Request, exc: Exception) -> JSONResponse:
    # Storage errors are wrapped in UnavailableError by the store, so a bare socket error
    # here comes from the database driver (pg8000 can raise one while connecting).
    failure = describe(exc)
    log.warning(
        "database connection error",
        extra={"fields": {"error": type(exc).__name__, "reason": failure.reason}},
    )
    detail = ERR_DATABASE_SLOW if failure.slow else ERR_DATABASE_DOWN
    return JSONResponse({"detail": detail}, status_code=503)


def _driver_errors() -> tuple[type[Exception], ...]:
    """pg8000's own connection errors: SQLAlchemy wraps those of statements, but not all of
    those raised while a connection is being returned to the pool."""
    try:
        from pg8000.exceptions import InterfaceError as DriverInterfaceError
    except ImportError:
        return ()
    return (DriverInterfaceError,)


def install_error_handlers(app: FastAPI) -> None:
    for driver_error in _driver_errors():
        app.add_exception_handler(driver_error, _connection_error)
    app.add_exception_handler(errors.OpsmlServerError, _domain_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(PoolTimeoutError, _database_error)
    app.add_exception_handler(ConnectionError, _connection_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(UnicodeEncodeError, _encoding_error)
