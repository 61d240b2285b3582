"""The query options of a `postgresql://` tracking URI, as pg8000 connection arguments.

pg8000 takes none of libpq's URL options: SQLAlchemy would hand `?sslmode=require` to it as
a keyword and every connection would fail. So the options are read here, checked at start-up
(an unknown one is a configuration error naming it, never repeating the URI) and turned into
arguments: `sslmode`/`sslrootcert`/`sslcert`/`sslkey` into an `ssl.SSLContext` with libpq's
semantics, `application_name` as is.

sslmode, as libpq documents it:
- `disable`: no TLS.
- `allow`, `prefer` (the default): TLS when the server offers it, certificate not checked
  (pg8000 cannot try plain text first, so `allow` behaves as `prefer`).
- `require`: TLS or no connection; the certificate is not checked, unless `sslrootcert` is
  given, which makes it `verify-ca` (as libpq does when a root certificate is present).
- `verify-ca`: TLS, certificate signed by a CA in `sslrootcert` (the system store when it is
  absent or `system`).
- `verify-full`: as `verify-ca`, and the certificate names the host of the URI.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.errors import ConfigError

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
OPTIONS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "application_name")

ERR_UNKNOWN_OPTION = "OPSML_TRACKING_URI: unknown option '{option}'; supported: " + ", ".join(
    OPTIONS
)
ERR_REPEATED_OPTION = "OPSML_TRACKING_URI: option '{option}' is given more than once"
ERR_SSLMODE = "OPSML_TRACKING_URI: sslmode must be one of " + ", ".join(SSL_MODES)
ERR_SSL_FILE = "OPSML_TRACKING_URI: {option} cannot be read as a certificate file ({reason})"
ERR_SSLKEY_ALONE = "OPSML_TRACKING_URI: sslkey needs sslcert (the client certificate)"


@dataclass(frozen=True)
class PgOptions:
    sslmode: str = "prefer"
    sslrootcert: str | None = None
    sslcert: str | None = None
    sslkey: str | None = None
    application_name: str | None = None

    def connect_args(self) -> dict[str, Any]:
        """pg8000 keyword arguments; certificate files are read now, so errors show early."""
        args: dict[str, Any] = {"ssl_context": self._ssl_context()}
        if self.application_name is not None:
            args["application_name"] = self.application_name
        return args

    def _ssl_context(self) -> ssl.SSLContext | bool | None:
        mode = self.sslmode
        if mode == "require" and self.sslrootcert is not None:
            mode = "verify-ca"
        if mode == "disable":
            return False
        if mode in {"allow", "prefer"} and self.sslcert is None:
            return None  # pg8000's own: TLS if offered, unverified
        if mode in {"verify-ca", "verify-full"}:
            context = ssl.create_default_context(cafile=self._root_file())
            context.check_hostname = mode == "verify-full"
        else:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.sslcert is not None:
            _load(context.load_cert_chain, "sslcert", self.sslcert, self.sslkey)
        return context

    def _root_file(self) -> str | None:
        if self.sslrootcert in (None, "system"):
            return None
        assert self.sslrootcert is not None
        # Read it here to turn a wrong path into a configuration error, not a 503 per request.
        _load(ssl.create_default_context, "sslrootcert", cafile=self.sslrootcert)
        return self.sslrootcert


def _load(loader: Any, option: str, *args: Any, **kwargs: Any) -> None:
    try:
        loader(*args, **kwargs)
    except (OSError, ssl.SSLError) as exc:
        reason = "not PEM" if isinstance(exc, ssl.SSLError) else exc.strerror or "unreadable"
        raise ConfigError(ERR_SSL_FILE.format(option=option, reason=reason)) from None


def parse_options(query: Mapping[str, str | tuple[str, ...]]) -> PgOptions:
    """Check the URI's query options (names and sslmode); raises `ConfigError`."""
    values: dict[str, str] = {}
    for option, value in query.items():
        if option not in OPTIONS:
            raise ConfigError(ERR_UNKNOWN_OPTION.format(option=option[:64]))
        if not isinstance(value, str):
            raise ConfigError(ERR_REPEATED_OPTION.format(option=option))
        values[option] = value
    options = PgOptions(**values)
    if options.sslmode not in SSL_MODES:
        raise ConfigError(ERR_SSLMODE)
    if options.sslkey is not None and options.sslcert is None:
        raise ConfigError(ERR_SSLKEY_ALONE)
    return options
