"""The application factory: `app.main:run_app(login=False)` for gunicorn and uvicorn."""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.concurrency import run_in_threadpool

from app import errors
from app.auth import BasicAuthMiddleware, check_auth_settings
from app.db.engine import build_engine, build_read_engine, session_factory
from app.db.migrate import run_migrations
from app.dependency_pins import warn_about_untested_versions
from app.http_errors import install_error_handlers
from app.observability import RequestObserver, configure_logging
from app.openapi import ERROR_RESPONSES, install_exact_integer_bounds, install_method_not_allowed
from app.request_limits import JsonBodyLimit
from app.route_access import check_every_route_has_a_rule, enforce_route_access
from app.routers import cards, files, health, metrics, models, projects
from app.services.cards import CardService
from app.settings import Settings, environment, load_settings
from app.storage.backends import open_filesystem
from app.storage.leftovers import sweep_and_log
from app.storage.store import ArtifactStore


def _lifespan(
    settings: Settings, store: ArtifactStore
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        warn_about_untested_versions()
        engine = build_engine(settings)
        if settings.is_sqlite:
            # The embedded default migrates itself; shared databases use `opsml-server migrate`.
            await run_in_threadpool(run_migrations, engine)
        sessions = session_factory(engine)
        app.state.settings = settings
        app.state.engine = engine
        app.state.sessions = sessions
        read_engine = build_read_engine(settings, engine)
        app.state.reads = session_factory(read_engine)
        app.state.cards = CardService(sessions, read_engine, settings.app_env.value)
        app.state.store = store
        _sweep_in_background(store)
        gc.enable()  # paused by the entry points while the server imported and built itself
        try:
            yield
        finally:
            read_engine.dispose()
            engine.dispose()

    return lifespan


def _sweep_in_background(store: ArtifactStore) -> None:
    # Partial uploads of workers that were killed: removed without delaying start-up (a
    # large tree takes a while to walk); live uploads are safe (app.storage.leftovers).
    root = store.location.local_root
    if root is not None:
        threading.Thread(
            target=sweep_and_log, args=(root.path,), name="opsml-upload-sweep", daemon=True
        ).start()


def create_app(settings: Settings, *, login: bool) -> FastAPI:
    check_auth_settings(settings, login)
    location = open_filesystem(
        settings.storage_uri, environment(), create_local_root=settings.creates_storage_root
    )
    store = ArtifactStore(location)
    app = FastAPI(
        title="opsml-server",
        summary="OpsML 2.x registry server",
        version="0.1.0",
        lifespan=_lifespan(settings, store),
        responses=ERROR_RESPONSES,
        # Every route's access rule (app.route_access), in one place.
        dependencies=[Depends(enforce_route_access)],
    )
    for router in (
        health.router,
        cards.router,
        files.router,
        metrics.router,
        projects.router,
        models.router,
    ):
        app.include_router(router)
    check_every_route_has_a_rule(app.routes)
    install_error_handlers(app)
    install_method_not_allowed(app)
    install_exact_integer_bounds(app)
    # Innermost of ours: a body is bounded only once the caller is known (login first).
    app.add_middleware(JsonBodyLimit, max_bytes=settings.max_json_bytes)
    if login:
        assert settings.username and settings.password
        app.add_middleware(
            BasicAuthMiddleware,
            username=settings.username,
            password=settings.password.get_secret_value(),
        )
    app.add_middleware(RequestObserver)
    return app


def run_app(login: bool = False) -> FastAPI:
    """Factory for `gunicorn ... "app.main:run_app(login=False)"` and `uvicorn --factory`.

    A configuration problem prints one line and exits with gunicorn's boot-error code, so the
    master stops instead of restarting workers forever.
    """
    configure_logging()
    try:
        return create_app(load_settings(), login=login)
    except errors.ConfigError as exc:
        print(f"opsml-server: configuration error: {exc.message}", file=sys.stderr)
        raise SystemExit(3) from None
