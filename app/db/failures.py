"""What went wrong with the database, in words safe to show: no SQL, no values, no URI.

Driver messages can quote SQL, parameters or the connection string, so a failure is told by
its SQLSTATE and exception classes only. The HTTP layer, readiness, the `migrate` command and
the logs all describe a failure through `describe()`.
"""

from __future__ import annotations

import socket
import sqlite3
import ssl
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError


class Kind(StrEnum):
    UNAVAILABLE = "unavailable"  # down, unreachable, refusing us, or too slow: 503
    BAD_VALUE = "bad_value"  # the request's data (SQLSTATE class 22): 400
    OTHER = "other"  # a defect of ours: 500


@dataclass(frozen=True)
class Failure:
    kind: Kind
    reason: str  # one short, value-free sentence for logs, readiness and the CLI
    sqlstate: str | None = None
    slow: bool = False


REASON_SLOW = "a statement took longer than OPSML_DB_STATEMENT_TIMEOUT"
REASON_NO_ANSWER = "the database did not answer in time"
REASON_LOGIN = "the database refused the user name or password of OPSML_TRACKING_URI"
REASON_NO_DATABASE = "the database named in OPSML_TRACKING_URI does not exist"
REASON_TLS = "TLS failed: the database's certificate does not match sslrootcert or the host"
REASON_TLS_OTHER = "TLS failed (check sslmode and the server's TLS setup)"
REASON_BUSY = "the database has no free connections or resources"
REASON_POOL = "no database connection became free within OPSML_POOL_TIMEOUT"
REASON_DOWN = "the database cannot be reached"
REASON_LOCKED = "another process held the SQLite database's write lock for too long"
REASON_DATA = "the database cannot store a value of the request"
REASON_OTHER = "the database refused the statement"

_LOCKED = "database is locked"  # sqlite3's fixed text for SQLITE_BUSY

# SQLSTATE -> reason, for the codes that make a request a 503 (server side, not the request).
_UNAVAILABLE = {
    "57014": REASON_SLOW,  # query_canceled: our statement_timeout
    "55P03": REASON_SLOW,  # lock_not_available
    "28000": REASON_LOGIN,
    "28P01": REASON_LOGIN,
    "3D000": REASON_NO_DATABASE,
    "57P01": REASON_DOWN,  # admin shutdown
    "57P02": REASON_DOWN,  # crash shutdown
    "57P03": REASON_DOWN,  # cannot connect now (starting up)
}


def sqlstate(exc: BaseException) -> str | None:
    # pg8000 puts the server's error fields in args[0] as a dict; "C" is the SQLSTATE.
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], dict):
        code = args[0].get("C")
        return code if isinstance(code, str) else None
    return None


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 10:
        chain.append(current)
        orig = current.orig if isinstance(current, DBAPIError) else None
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return chain


def describe(exc: BaseException) -> Failure:
    code = sqlstate(exc)
    if code is not None:
        if code in _UNAVAILABLE:
            reason = _UNAVAILABLE[code]
            return Failure(Kind.UNAVAILABLE, reason, code, slow=reason == REASON_SLOW)
        if code.startswith("08"):
            return Failure(Kind.UNAVAILABLE, REASON_DOWN, code)
        if code.startswith("53"):
            return Failure(Kind.UNAVAILABLE, REASON_BUSY, code)
        if code.startswith("22"):
            return Failure(Kind.BAD_VALUE, REASON_DATA, code)
    if isinstance(exc, PoolTimeoutError):
        return Failure(Kind.UNAVAILABLE, REASON_POOL, slow=True)
    causes = _causes(exc)
    if any(isinstance(c, ssl.SSLCertVerificationError) for c in causes):
        return Failure(Kind.UNAVAILABLE, REASON_TLS)
    if any(isinstance(c, ssl.SSLError) for c in causes):
        return Failure(Kind.UNAVAILABLE, REASON_TLS_OTHER)
    if any(isinstance(c, socket.timeout | TimeoutError) for c in causes):
        return Failure(Kind.UNAVAILABLE, REASON_NO_ANSWER, slow=True)
    if any(isinstance(c, sqlite3.OperationalError) and _LOCKED in str(c) for c in causes):
        # SQLite's busy timeout ran out: another process held the write lock.
        return Failure(Kind.UNAVAILABLE, REASON_LOCKED, slow=True)
    if _connection_lost(exc, causes):
        return Failure(Kind.UNAVAILABLE, REASON_DOWN, code)
    return Failure(Kind.OTHER, REASON_OTHER, code)


def _connection_lost(exc: BaseException, causes: list[BaseException]) -> bool:
    if isinstance(exc, OperationalError | InterfaceError | ConnectionError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    # pg8000's own InterfaceError (a refused or dropped connection), raw or wrapped.
    return any(type(c).__name__ == "InterfaceError" for c in causes)
