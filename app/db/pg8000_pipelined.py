"""pg8000, tuned for many short statements: one round trip each, SQL converted once.

Two costs dominate a registry read through stock pg8000:

- Round trips. pg8000 runs a parameterised statement as three exchanges with the server, each
  waiting for the previous answer: Parse, then Describe, then Bind + Execute. The worker
  sits in `recv`, and every wait costs both processes a context switch. The extended-query
  protocol allows the whole sequence as one batch: Parse, Bind, Describe (the portal, so the
  row description still precedes the rows), Execute, Sync. The server answers in order, and
  an error anywhere makes it skip to the Sync, so errors surface exactly as before.
- Placeholder conversion. pg8000 rewrites `%s` placeholders to `$1` by scanning the SQL one
  character at a time in Python on every execute: ~0.6 ms for a card listing's statement,
  more than the query itself. SQLAlchemy sends the same few statement strings again and
  again, so the conversion is cached per string.

This module is a DBAPI module for SQLAlchemy's `module=` argument: everything is pg8000's,
except that `connect` returns a connection with both changes. It reuses pg8000's own message
builders, converter and reader, which are internal: pyproject pins pg8000 below 2, and
tests/app/test_pg8000_pipelined.py checks results, errors and recovery on a real server.
COPY (a `stream`) and mapping parameters keep pg8000's own path.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import pg8000
from pg8000 import core, legacy
from pg8000.dbapi import convert_paramstyle
from pg8000.exceptions import DatabaseError


@lru_cache(maxsize=1024)
def _numbered(operation: str) -> str:
    """`%s` placeholders as `$1, $2, ...`; for the "format" style only the SQL changes."""
    statement: str = convert_paramstyle("format", operation, ())[0]
    return statement


def _as_dbapi_error(exc: DatabaseError) -> Exception:
    # The classes pg8000's legacy cursor raises, which SQLAlchemy maps to its own.
    fields = exc.args[0] if exc.args else None
    code = fields.get("C") if isinstance(fields, dict) else None
    error_class: type[Exception] = pg8000.ProgrammingError
    if code == "28000":
        error_class = pg8000.InterfaceError
    elif code == "23505":
        error_class = pg8000.IntegrityError
    return error_class(fields if fields is not None else str(exc))


class PipelinedCursor(legacy.Cursor):  # type: ignore[misc]
    def execute(self, operation: str, args: Any = (), stream: Any = None) -> Any:
        if (
            stream is not None
            or not args
            or self.paramstyle != "format"
            or not isinstance(args, Sequence)
            or self._c is None
        ):
            return super().execute(operation, args, stream)
        connection = self._c
        if not connection._in_transaction and not connection.autocommit:
            connection.execute_simple("begin transaction")
        oids: Any = self._input_oids  # type: ignore[has-type]  # pg8000 is untyped
        try:
            self._context = connection.execute_unnamed(_numbered(operation), vals=args, oids=oids)
        except DatabaseError as exc:
            raise _as_dbapi_error(exc) from None
        self._row_iter = iter(self._context.rows or ())
        self._input_oids = ()
        self.input_types: list[Any] = []
        return self


class PipelinedConnection(legacy.Connection):  # type: ignore[misc]
    """A pg8000 connection whose statements cost one round trip."""

    def cursor(self) -> PipelinedCursor:
        return PipelinedCursor(self)

    def handle_messages(self, context: Any) -> None:
        # pg8000 reads a reply's first bytes outside its own `except OSError`, so a socket
        # timeout (a database that stopped answering) escaped as a bare TimeoutError, which
        # SQLAlchemy does not wrap: a 500. As pg8000's "network error" it is a DBAPI error,
        # and SQLAlchemy's pg8000 dialect takes that text as a disconnect (pool invalidated).
        try:
            super().handle_messages(context)
        except OSError as exc:
            raise pg8000.InterfaceError("network error") from exc

    def execute_unnamed(
        self, statement: str, vals: Any = (), oids: Any = (), stream: Any = None
    ) -> Any:
        if stream is not None:
            return super().execute_unnamed(statement, vals=vals, oids=oids, stream=stream)
        context = core.Context(statement, stream=None)
        self.send_PARSE(core.NULL_BYTE, statement, oids)
        self.send_BIND(core.NULL_BYTE, core.make_params(self.py_types, vals))
        # Describe the portal, not the statement: its row description arrives before the rows.
        self._send_message(core.DESCRIBE, core.PORTAL + core.NULL_BYTE)
        core._write(self._sock, core.EXECUTE_MSG)
        core._write(self._sock, core.SYNC_MSG)
        core._flush(self._sock)
        self.handle_messages(context)
        return context


_SERVER_REFUSES_TLS = "Server refuses SSL"  # pg8000's words when sslmode requires TLS


def connect(**kwargs: Any) -> PipelinedConnection:
    try:
        return PipelinedConnection(**kwargs)
    except OSError as exc:
        # pg8000 lets a failed TLS handshake (ssl.SSLError) or a timeout while asking for TLS
        # escape as it is, and SQLAlchemy only wraps DBAPI errors: as one it is a 503.
        raise pg8000.InterfaceError("network error") from exc
    except pg8000.InterfaceError as exc:
        if str(exc) != _SERVER_REFUSES_TLS:
            raise
        # Chained to an SSLError so that app.db.failures tells it from a network failure.
        raise pg8000.InterfaceError("server refuses TLS") from ssl.SSLError(_SERVER_REFUSES_TLS)


def __getattr__(name: str) -> Any:
    # The rest of the DBAPI surface (exceptions, type constants, paramstyle, __version__)
    # is pg8000's own.
    return getattr(pg8000, name)
