"""HTTP Basic login (run_app(login=True)) and the production write token.

Login is an ASGI middleware rather than a route dependency so that nothing, not even FastAPI's
own docs and OpenAPI routes, can be reached around it. Probes and metrics stay open: kubelet
and Prometheus cannot send Basic credentials, and they reveal nothing about the registry.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from typing import Annotated

from fastapi import Depends, Header, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import AuthError, ConfigError
from app.settings import AppEnv, Settings

# The signed-URL route carries its own HMAC credential: a browser holding the URL has no login.
OPEN_PATHS = frozenset(
    {"/livez", "/readyz", "/metrics", "/opsml/healthcheck", "/opsml/files/signed"}
)

ERR_LOGIN_UNSET = (
    "login is on but OPSML_USERNAME and OPSML_PASSWORD are not both set; set them or start "
    "without login"
)
ERR_PROD_TOKEN_UNSET = "APP_ENV=production needs OPSML_PROD_TOKEN to protect writes"
ERR_BAD_LOGIN = (
    "Invalid or missing credentials: send HTTP Basic auth (OPSML_USERNAME/OPSML_PASSWORD)"
)
# The reference's wording, word for word: the client shows it to users, and scripts look for it.
ERR_BAD_PROD_TOKEN = "Cannot perform write operation on prod resource without token"


def check_auth_settings(settings: Settings, login: bool) -> None:
    if login and not (settings.username and settings.password):
        raise ConfigError(ERR_LOGIN_UNSET)
    if settings.app_env is AppEnv.PRODUCTION and not settings.prod_token:
        raise ConfigError(ERR_PROD_TOKEN_UNSET)


def _credentials_match(header: str, username: str, password: str) -> bool:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    user, sep, given = decoded.partition(":")
    # Both comparisons always run, so timing does not tell which part was wrong.
    user_ok = secrets.compare_digest(user.encode(), username.encode())
    password_ok = secrets.compare_digest(given.encode(), password.encode())
    return bool(sep) and user_ok and password_ok


class BasicAuthMiddleware:
    def __init__(self, app: ASGIApp, username: str, password: str) -> None:
        self.app = app
        self.username = username
        self.password = password

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        if _credentials_match(header, self.username, self.password):
            await self.app(scope, receive, send)
            return
        body = json.dumps({"detail": ERR_BAD_LOGIN}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b'Basic realm="opsml"'),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def require_prod_token(
    request: Request,
    x_prod_token: Annotated[str | None, Header(alias="X-Prod-Token")] = None,
) -> None:
    """Route dependency for writes: only enforced when APP_ENV=production."""
    settings: Settings = request.app.state.settings
    if settings.app_env is not AppEnv.PRODUCTION:
        return
    expected = settings.prod_token.get_secret_value() if settings.prod_token else ""
    if not expected or not secrets.compare_digest((x_prod_token or "").encode(), expected.encode()):
        raise AuthError(ERR_BAD_PROD_TOKEN, forbidden=True)


async def _prod_token_dependency(
    request: Request,
    x_prod_token: Annotated[str | None, Header(alias="X-Prod-Token")] = None,
) -> None:
    # async: no I/O here, and a plain `def` dependency would cost a threadpool hop.
    require_prod_token(request, x_prod_token)


ProdTokenDep = Depends(_prod_token_dependency)
