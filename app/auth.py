"""HTTP Basic login (run_app(login=True)) and the start-up checks of the auth settings.

The production write token is one of the route rules in `app.route_access`.

Login is an ASGI middleware rather than a route dependency so that nothing, not even FastAPI's
own docs and OpenAPI routes, can be reached around it. Probes and metrics stay open: kubelet
and Prometheus cannot send Basic credentials, and they reveal nothing about the registry.
"""

from __future__ import annotations

import base64
import binascii
import secrets

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import ConfigError
from app.route_access import UNAUTHENTICATED_PATHS
from app.settings import AppEnv, Settings

# From the route rules: probes, Prometheus, and the signed-URL route, which carries its own
# HMAC credential (a browser holding the URL has no login).
OPEN_PATHS = UNAUTHENTICATED_PATHS

ERR_LOGIN_UNSET = (
    "login is on but OPSML_USERNAME and OPSML_PASSWORD are not both set; set them or start "
    "without login"
)
ERR_PROD_TOKEN_UNSET = "APP_ENV=production needs OPSML_PROD_TOKEN to protect writes"
ERR_BAD_LOGIN = (
    "Invalid or missing credentials: send HTTP Basic auth (OPSML_USERNAME/OPSML_PASSWORD)"
)


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
        refusal = JSONResponse(
            {"detail": ERR_BAD_LOGIN},
            status_code=401,
            headers={"www-authenticate": 'Basic realm="opsml"'},
        )
        await refusal(scope, receive, send)
