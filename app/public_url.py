"""Where clients reach this server, for URLs we hand out (local-storage pre-signed URLs).

Never the request's `Host` header: the client writes it, so a forged Host would get a signed
URL that sends its bearer (and, for a PUT, the artifact) to another host. Instead:
- `OPSML_EXTERNAL_URL` when set (behind a proxy or ingress, the only correct answer);
- otherwise the address the request's TCP connection arrived on (the ASGI `server`), which a
  client cannot choose: it is one of the addresses the server listens on. For the laptop
  default (`127.0.0.1:8888`) that is exactly the URL the user already uses.
"""

from __future__ import annotations

from typing import Final

from starlette.requests import Request

from app.errors import ConfigError

ERR_NO_SERVER_ADDRESS: Final = (
    "This server cannot tell its own address (it listens on a Unix socket): set "
    "OPSML_EXTERNAL_URL to the URL clients use to reach it"
)
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


def public_base_url(request: Request, external_url: str | None) -> str:
    """`scheme://host[:port][/prefix]` without a trailing slash."""
    if external_url:
        return external_url.rstrip("/")
    server = request.scope.get("server")
    if not server or server[1] is None:
        raise ConfigError(ERR_NO_SERVER_ADDRESS)
    host, port = str(server[0]), int(server[1])
    scheme = "https" if request.url.scheme in ("https", "wss") else "http"
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    authority = host if _DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    root_path = str(request.scope.get("root_path", "")).rstrip("/")
    return f"{scheme}://{authority}{root_path}"
