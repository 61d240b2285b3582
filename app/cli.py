"""Command-line entry points: `opsml-uvicorn-server` and `opsml-server migrate|serve`."""

from __future__ import annotations

import argparse
import gc
import sys

from app.errors import ConfigError
from app.storage.leftovers import MIN_AGE_S

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8888


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"bind address (default {DEFAULT_HOST})"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--login",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="require HTTP Basic auth with OPSML_USERNAME/OPSML_PASSWORD (default: off)",
    )


def _serve(host: str, port: int, login: bool) -> int:
    # Importing FastAPI, SQLAlchemy and our tables allocates about a million objects and almost
    # no garbage; the collector's passes over them were ~15% of start-up (1.26 s against 1.46 s
    # to import). Paused only here, on the way to serving: the app's lifespan turns it back on
    # once the server is ready, and `migrate` or an importer of this module never runs without.
    gc.disable()
    try:
        return _build_and_run(host, port, login)
    finally:
        gc.enable()


def _build_and_run(host: str, port: int, login: bool) -> int:
    import uvicorn

    from app.http_protocol import HttpLimits, protocol_class
    from app.main import create_app
    from app.observability import configure_logging
    from app.settings import load_settings

    configure_logging()
    try:
        settings = load_settings()
        app = create_app(settings, login=login)
    except ConfigError as exc:
        print(f"opsml-server: configuration error: {exc.message}", file=sys.stderr)
        return 2
    limits = HttpLimits.from_settings(settings)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        http=protocol_class(limits),
        h11_max_incomplete_event_size=limits.max_header_bytes,
    )
    return 0


def _migrate() -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from app.db.engine import build_engine
    from app.db.failures import describe
    from app.db.migrate import run_migrations
    from app.errors import UnavailableError
    from app.observability import configure_logging
    from app.settings import load_settings

    configure_logging()  # Alembic's own log lines, as JSON like the server's
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"opsml-server: configuration error: {exc.message}", file=sys.stderr)
        return 2
    # Migration statements (an index on a large table) may outlast a request's limit.
    engine = build_engine(settings, statement_timeout_s=settings.migrate_timeout)
    try:
        revision = run_migrations(engine, lock_timeout_s=settings.migrate_timeout)
    except UnavailableError as exc:
        print(f"opsml-server: migration failed: {exc.message}", file=sys.stderr)
        return 1
    except (SQLAlchemyError, OSError) as exc:
        # One line, never the driver's text: it can quote the URI, SQL or values.
        print(
            f"opsml-server: migration failed: {describe(exc).reason} ({type(exc).__name__})",
            file=sys.stderr,
        )
        return 1
    finally:
        engine.dispose()
    print(f"opsml-server: database schema at revision {revision}")
    return 0


def _clean_uploads(min_age_s: float) -> int:
    from app.settings import environment, load_settings
    from app.storage.backends import open_filesystem
    from app.storage.leftovers import sweep

    try:
        settings = load_settings()
        location = open_filesystem(settings.storage_uri, environment())
    except ConfigError as exc:
        print(f"opsml-server: configuration error: {exc.message}", file=sys.stderr)
        return 2
    if location.local_root is None:
        print("opsml-server: object storage keeps no partial uploads; nothing to clean")
        return 0
    result = sweep(location.local_root.path, min_age_s=min_age_s)
    print(
        f"opsml-server: removed {result.files} partial upload(s) ({result.bytes} bytes) and "
        f"{result.folders} empty folder(s); {result.in_flight} in flight or recent, kept"
    )
    return 0


def uvicorn_server(argv: list[str] | None = None) -> None:
    """`opsml-uvicorn-server [--host H] [--port P] [--login|--no-login]` for local use."""
    parser = argparse.ArgumentParser(
        prog="opsml-uvicorn-server", description=uvicorn_server.__doc__
    )
    _serve_arguments(parser)
    args = parser.parse_args(argv)
    sys.exit(_serve(args.host, args.port, args.login))


def main(argv: list[str] | None = None) -> None:
    """`opsml-server migrate` (schema to head), `serve` (as opsml-uvicorn-server) or
    `clean-uploads` (partial uploads of killed workers)."""
    parser = argparse.ArgumentParser(prog="opsml-server")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="upgrade the database at OPSML_TRACKING_URI to our schema")
    _serve_arguments(commands.add_parser("serve", help="run the server with uvicorn"))
    clean = commands.add_parser(
        "clean-uploads",
        help="remove partial uploads left by killed workers (local storage; live ones are kept)",
    )
    clean.add_argument(
        "--min-age",
        type=float,
        default=MIN_AGE_S,
        help=f"only files untouched for this many seconds (default {MIN_AGE_S:.0f})",
    )
    args = parser.parse_args(argv)
    if args.command == "migrate":
        sys.exit(_migrate())
    if args.command == "clean-uploads":
        sys.exit(_clean_uploads(args.min_age))
    sys.exit(_serve(args.host, args.port, args.login))
