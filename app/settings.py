"""Server configuration, read once from the environment.

Every variable of the seed's table is read here and nowhere else (the storage layer receives
the environment mapping explicitly so that it can be tested without touching `os.environ`).
"""

from __future__ import annotations

import os
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from app.db.pg_options import parse_options
from app.errors import ConfigError

DEFAULT_TRACKING_URI = "sqlite:///opsml_data/opsml.db"
DEFAULT_STORAGE_URI = "./opsml_data/artifacts"
ERR_EXTERNAL_URL = (
    "must be the http(s) URL clients use to reach this server, such as "
    "https://opsml.example.com or https://example.com/opsml (no query, fragment or credentials)"
)


class AppEnv(StrEnum):
    DEVELOPMENT = "development"
    STAGING = "staging"
    PRODUCTION = "production"


class Settings(BaseSettings):
    """What the server needs to start; secrets are `SecretStr` so they never print."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=True)

    tracking_uri: SecretStr = Field(
        default=SecretStr(DEFAULT_TRACKING_URI), validation_alias="OPSML_TRACKING_URI"
    )
    storage_uri: str = Field(default=DEFAULT_STORAGE_URI, validation_alias="OPSML_STORAGE_URI")
    pool_size: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=10, validation_alias="OPSML_POOL_SIZE"
    )
    max_overflow: Annotated[int, Field(ge=0, le=1000)] = Field(
        default=5, validation_alias="OPSML_MAX_OVERFLOW"
    )
    app_env: AppEnv = Field(default=AppEnv.DEVELOPMENT, validation_alias="APP_ENV")
    prod_token: SecretStr | None = Field(default=None, validation_alias="OPSML_PROD_TOKEN")
    username: str | None = Field(default=None, validation_alias="OPSML_USERNAME")
    password: SecretStr | None = Field(default=None, validation_alias="OPSML_PASSWORD")
    signing_key: SecretStr | None = Field(default=None, validation_alias="OPSML_SIGNING_KEY")
    max_upload_bytes: Annotated[int, Field(ge=1)] = Field(
        default=50 * 1024**3, validation_alias="OPSML_MAX_UPLOAD_BYTES"
    )
    # Seconds. A request's statements must end before the client's 30 s read timeout.
    db_connect_timeout: Annotated[float, Field(gt=0, le=300)] = Field(
        default=5, validation_alias="OPSML_DB_CONNECT_TIMEOUT"
    )
    db_statement_timeout: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=20, validation_alias="OPSML_DB_STATEMENT_TIMEOUT"
    )
    pool_timeout: Annotated[float, Field(gt=0, le=300)] = Field(
        default=10, validation_alias="OPSML_POOL_TIMEOUT"
    )
    migrate_timeout: Annotated[float, Field(gt=0, le=86400)] = Field(
        default=600, validation_alias="OPSML_MIGRATE_TIMEOUT"
    )
    # Request limits (see app.request_limits): the JSON body bound is counted as bytes arrive;
    # the head bound, head deadline and body idle timeout are enforced by app.http_protocol.
    max_json_bytes: Annotated[int, Field(ge=1024)] = Field(
        default=4 * 1024**2, validation_alias="OPSML_MAX_JSON_BYTES"
    )
    max_header_bytes: Annotated[int, Field(ge=4096, le=16 * 1024**2)] = Field(
        default=64 * 1024, validation_alias="OPSML_MAX_HEADER_BYTES"
    )
    header_timeout_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=15.0, validation_alias="OPSML_HEADER_TIMEOUT_S"
    )
    body_idle_timeout_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=30.0, validation_alias="OPSML_BODY_IDLE_TIMEOUT_S"
    )
    # Where clients reach this server (behind a proxy or ingress): prefixes local-storage
    # pre-signed URLs. Unset, they use the address the request's connection arrived on.
    external_url: str | None = Field(default=None, validation_alias="OPSML_EXTERNAL_URL")

    @field_validator("app_env", mode="before")
    @classmethod
    def _lower_app_env(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("storage_uri")
    @classmethod
    def _storage_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @field_validator("external_url")
    @classmethod
    def _external_url_is_a_base(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(ERR_EXTERNAL_URL)
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError(ERR_EXTERNAL_URL)
        return value.strip().rstrip("/")

    @property
    def database_url(self) -> URL:
        return parse_tracking_uri(self.tracking_uri.get_secret_value())

    @property
    def creates_storage_root(self) -> bool:
        """Only the embedded default storage folder is created by the server (at start)."""
        return self.storage_uri == DEFAULT_STORAGE_URI

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.get_backend_name() == "sqlite"


# A host name, an IPv4 address or an IPv6 literal (SQLAlchemy strips its brackets).
_HOST = re.compile(r"[A-Za-z0-9_.-]+|[0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]+)?")

ERR_URI_HOST = (
    "OPSML_TRACKING_URI has an invalid host; if the user name or password contains one of "
    "@ : / ? # [ ] %, percent-encode it (for example @ as %40)"
)
ERR_URI_PORT = "OPSML_TRACKING_URI has an invalid port (expected 1-65535)"
ERR_URI_SYNTAX = (
    "OPSML_TRACKING_URI is not a database URL (expected sqlite:///path.db or "
    "postgresql://user:password@host:5432/db; percent-encode @ : / ? # in the password)"
)

ERR_SQLITE_OPTION = "OPSML_TRACKING_URI: unknown option '{option}'; a sqlite:/// URI takes none"

_ALIASES = {name: field.validation_alias for name, field in Settings.model_fields.items()}


def parse_tracking_uri(raw: str) -> URL:
    """Turn `OPSML_TRACKING_URI` into a SQLAlchemy URL with the driver we ship.

    Accepted: `sqlite:///path.db`, a bare path to a SQLite file, and `postgresql://` /
    `postgres://` / `postgresql+pg8000://`; Postgres always goes through pg8000 (pure Python,
    no libpq in the image). Error messages never repeat the URI: it may hold a password.
    """
    value = raw.strip()
    if not value:
        raise ConfigError(
            "OPSML_TRACKING_URI is empty; set a sqlite:/// path or a postgresql:// URL"
        )
    if "://" not in value:
        value = f"sqlite:///{value}"
    try:
        url = make_url(value)
    except (ArgumentError, ValueError):
        # A non-numeric port lands here too; the exception text would quote the URI.
        raise ConfigError(ERR_URI_SYNTAX) from None
    backend = url.get_backend_name()
    if backend in {"postgresql", "postgres"}:
        if url.drivername not in {"postgresql", "postgres", "postgresql+pg8000"}:
            raise ConfigError(
                f"OPSML_TRACKING_URI uses driver '{url.drivername}'; only pg8000 is shipped: "
                "use postgresql:// or postgresql+pg8000://"
            )
        if not url.host or not url.database:
            raise ConfigError("OPSML_TRACKING_URI needs a host and a database name")
        if not _HOST.fullmatch(url.host):
            raise ConfigError(ERR_URI_HOST)
        if url.port is not None and not 0 < url.port < 65536:
            raise ConfigError(ERR_URI_PORT)
        parse_options(url.query)
        return url.set(drivername="postgresql+pg8000")
    if backend == "sqlite":
        if url.query:
            # pysqlite ignores most of them with a warning, and fails later on others.
            option = next(iter(url.query))[:64]
            raise ConfigError(ERR_SQLITE_OPTION.format(option=option))
        return url
    raise ConfigError(
        f"OPSML_TRACKING_URI scheme '{url.drivername}' is not supported; use sqlite:/// or "
        "postgresql://"
    )


def sqlite_file(url: URL) -> Path | None:
    """The database file of a file-backed SQLite URL (None for in-memory)."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def load_settings() -> Settings:
    """Read and validate the environment, turning any problem into one `ConfigError` line."""
    try:
        settings = Settings()
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "configuration"
        variable = _ALIASES.get(field, field)
        # `input` is deliberately left out of the message: it can be a secret.
        raise ConfigError(f"{variable}: {error['msg']}") from None
    url = settings.database_url  # validate the URI now, not on first request
    if url.get_backend_name() == "postgresql":
        parse_options(url.query).connect_args()  # certificate files too
    return settings


def environment() -> dict[str, str]:
    """A copy of the process environment, for the storage layer's credential lookup."""
    return dict(os.environ)
