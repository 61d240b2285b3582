"""Command-line entry points: `opsml-uvicorn-server` and `opsml-server migrate|serve`."""

from __future__ import annotations

import argparse
import gc
import sys

# Importing FastAPI, SQLAlchemy and our tables allocates about a million objects and almost
# no garbage; the collector's passes over them were ~15% of start-up (1.26 s against 1.46 s
# to import). The app's lifespan turns collection back on once the server is ready.
gc.disable()

from app.errors import ConfigError  # noqa: E402 - after gc.disable() on purpose
from app.storage.leftovers import MIN_AGE_S  # noqa: E402

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
    import uvicorn

    from app.main import create_app
    from app.observability import configure_logging
    from app.settings import load_settings

    configure_logging()
    try:
        app = create_app(load_settings(), login=login)
    except ConfigError as exc:
        print(f"opsml-server: configuration error: {exc.message}", file=sys.stderr)
        return 2
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)
    return 0


def _migrate() -> int:
    from app.db.engine import build_engine
    from app.db.migrate import run_migrations
    from app.settings import load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"opsml-server: configuration error: {exc.message}", file=sys.stderr)
        return 2
    engine = build_engine(settings)
    try:
        revision = run_migrations(engine)
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
