"""The production app plus one route that fails as a defect would, for the logging test.

`gunicorn ... "tests.production.failing_app:run_app()"`: the route wraps a database error
(whose text holds the statement and its parameter) in an exception nobody handles, which is
what Starlette's and uvicorn's unhandled-error path then logs.
"""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from app import main

UNHANDLED_ROUTE = "/test-only/unhandled"
SECRET_VALUE = "value-9d2k-never-logged"


def run_app() -> FastAPI:
    app = main.run_app(login=False)

    @app.get(UNHANDLED_ROUTE)
    def unhandled() -> None:
        engine: Engine = app.state.engine
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT CAST(:v AS INTEGER)"), {"v": SECRET_VALUE})
        except DBAPIError as exc:
            raise RuntimeError(f"lookup failed: {exc}") from exc

    return app
