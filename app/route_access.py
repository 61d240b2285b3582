"""Who may call each route: one explicit rule per route, enforced in one place.

A route without a rule stops the app from being built (`check_every_route_has_a_rule`), so a
new route cannot ship unguarded by omission. The production write token follows the reference
server (opsml 2.2.4 `verify_token` on cards create/update/delete and files upload/delete) and
also covers our routes that change state: `cards/version` (it stores a version claim), `PUT
metrics` and a pre-signed PUT URL. The real client sends `X-Prod-Token` on every request, so
production clients keep working.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Annotated

from fastapi import Header, Request
from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute

from app.errors import AuthError
from app.settings import AppEnv, Settings


class Access(StrEnum):
    OPEN = "open"  # no login and no token: probes and Prometheus
    SIGNED = "signed"  # no login: the URL carries its own HMAC signature
    READ = "read"  # login when it is on
    WRITE = "write"  # login when it is on, and X-Prod-Token with APP_ENV=production
    WRITE_IF_PUT = "write if method=PUT"  # presign: a PUT URL is a write credential


ROUTE_ACCESS: Mapping[tuple[str, str], Access] = {
    ("GET", "/livez"): Access.OPEN,
    ("GET", "/readyz"): Access.OPEN,
    ("GET", "/metrics"): Access.OPEN,
    ("GET", "/opsml/healthcheck"): Access.OPEN,
    ("GET", "/opsml/files/signed"): Access.SIGNED,
    ("PUT", "/opsml/files/signed"): Access.SIGNED,
    ("GET", "/docs"): Access.READ,
    ("GET", "/docs/oauth2-redirect"): Access.READ,
    ("GET", "/redoc"): Access.READ,
    ("GET", "/openapi.json"): Access.READ,
    ("GET", "/opsml/registry/table"): Access.READ,
    ("POST", "/opsml/cards/uid"): Access.READ,
    ("POST", "/opsml/cards/list"): Access.READ,
    ("GET", "/opsml/cards/repositories"): Access.READ,
    ("GET", "/opsml/cards/names"): Access.READ,
    ("POST", "/opsml/cards/version"): Access.WRITE,
    ("POST", "/opsml/cards/create"): Access.WRITE,
    ("POST", "/opsml/cards/update"): Access.WRITE,
    ("POST", "/opsml/cards/delete"): Access.WRITE,
    ("GET", "/opsml/files/download"): Access.READ,
    ("GET", "/opsml/files/list"): Access.READ,
    ("GET", "/opsml/files/exists"): Access.READ,
    ("POST", "/opsml/files/upload"): Access.WRITE,
    ("GET", "/opsml/files/delete"): Access.WRITE,
    ("GET", "/opsml/files/presign"): Access.WRITE_IF_PUT,
    ("POST", "/opsml/metrics"): Access.READ,
    ("GET", "/opsml/metrics"): Access.READ,  # opsml-cli get-model-metrics
    ("PUT", "/opsml/metrics"): Access.WRITE,
    ("GET", "/opsml/projects/id"): Access.READ,
    ("POST", "/opsml/models/metadata"): Access.READ,  # opsml-cli; a read, as its name says
    ("POST", "/opsml/models/metrics"): Access.READ,
    ("POST", "/opsml/models/compare_metrics"): Access.READ,
    ("POST", "/opsml/models/register"): Access.WRITE,  # copies the model: a write
    ("GET", "/opsml/files/presigned"): Access.WRITE_IF_PUT,  # opsml-cli 0.7's name of presign
}

# Paths the login middleware lets through: every method on them is open or signed.
UNAUTHENTICATED_PATHS = frozenset(
    path
    for (_, path), access in ROUTE_ACCESS.items()
    if all(
        rule in (Access.OPEN, Access.SIGNED)
        for (_, other), rule in ROUTE_ACCESS.items()
        if other == path
    )
)

# The reference's wording, word for word: the client shows it to users, and scripts look for it.
ERR_BAD_PROD_TOKEN = "Cannot perform write operation on prod resource without token"
ERR_NO_RULE = "Route(s) without an access rule in app.route_access.ROUTE_ACCESS: {routes}"


def served_routes(routes: Sequence[BaseRoute]) -> list[tuple[str, str]]:
    """(method, path) of every route an app serves, through its included routers (as FastAPI's
    own OpenAPI builder walks them); HEAD is GET's twin and shares its rule."""
    served = []
    for context in iter_route_contexts(routes):
        if context.path is not None and context.methods:
            served += [(m, context.path) for m in sorted(context.methods) if m != "HEAD"]
    return served


def check_every_route_has_a_rule(routes: Sequence[BaseRoute]) -> None:
    missing = [key for key in served_routes(routes) if key not in ROUTE_ACCESS]
    if missing:
        raise RuntimeError(ERR_NO_RULE.format(routes=", ".join(f"{m} {p}" for m, p in missing)))


def require_prod_token(request: Request, x_prod_token: str | None) -> None:
    """Only enforced when APP_ENV=production."""
    settings: Settings = request.app.state.settings
    if settings.app_env is not AppEnv.PRODUCTION:
        return
    expected = settings.prod_token.get_secret_value() if settings.prod_token else ""
    if not expected or not secrets.compare_digest((x_prod_token or "").encode(), expected.encode()):
        raise AuthError(ERR_BAD_PROD_TOKEN, forbidden=True)


def _access_of(request: Request) -> Access:
    # The matched route's template (the routers are included without a further prefix).
    path = getattr(request.scope.get("route"), "path", request.url.path)
    method = "GET" if request.method == "HEAD" else request.method
    # Unknown (cannot happen once the start-up check passed): the strictest rule.
    return ROUTE_ACCESS.get((method, path), Access.WRITE)


async def enforce_route_access(
    request: Request,
    x_prod_token: Annotated[
        str | None, Header(alias="X-Prod-Token", description="Needed on writes in production")
    ] = None,
) -> None:
    """App-wide dependency. async: no I/O, and a plain `def` would cost a threadpool hop."""
    access = _access_of(request)
    if access is Access.WRITE or (
        access is Access.WRITE_IF_PUT and request.query_params.get("method") == "PUT"
    ):
        require_prod_token(request, x_prod_token)
