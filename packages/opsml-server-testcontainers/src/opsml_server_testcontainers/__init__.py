"""`OpsmlServerContainer`: the opsml-server image as a testcontainers container.

The container runs the image's own command (gunicorn, as in production). By default it uses the
embedded SQLite database and a local folder inside the container; `tracking_uri` and
`storage_uri` point it at a real Postgres and bucket instead (the server migrates a shared
database only when asked: `migrate=True` runs `opsml-server migrate` from the same image
first, as the Helm chart's migration Job does). `start()` returns once `/readyz` answers 200.

With `host_network=True` the container shares the host's network (for engines without a
bridge, or to reach services on the host's loopback) and listens on a free port; otherwise port
3000 is published on a random host port.
"""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from testcontainers.core.container import DockerContainer

__all__ = ["OpsmlServerContainer", "OpsmlServerNotReady"]

CONTAINER_PORT = 3000
READY_PATH = "/readyz"
NOT_MIGRATED = "schema not migrated"
ERR_NOT_MIGRATED = (
    "opsml-server in {image} reports the database schema not migrated: pass migrate=True "
    "(runs `opsml-server migrate` from the image first) or migrate it yourself"
)


class OpsmlServerNotReady(RuntimeError):
    """The server did not become ready; the message carries the end of its log."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class OpsmlServerContainer(DockerContainer):
    def __init__(
        self,
        image: str = "opsml-server:latest",
        *,
        tracking_uri: str | None = None,
        storage_uri: str | None = None,
        env: Mapping[str, str] | None = None,
        host_network: bool = False,
        migrate: bool = False,
        workers: int = 1,
        ready_timeout_s: float = 60.0,
        **kwargs: Any,
    ) -> None:
        if host_network:
            # Through the constructor: `with_kwargs` would replace the caller's other kwargs.
            kwargs = {**kwargs, "network_mode": "host"}
        super().__init__(image, **kwargs)
        self._host_network = host_network
        self._migrate = migrate
        self._ready_timeout_s = ready_timeout_s
        self._port = _free_port() if host_network else CONTAINER_PORT
        settings = {"WEB_CONCURRENCY": str(workers), "PORT": str(self._port)}
        if tracking_uri:
            settings["OPSML_TRACKING_URI"] = tracking_uri
        if storage_uri:
            settings["OPSML_STORAGE_URI"] = storage_uri
        settings.update(env or {})
        for key, value in settings.items():
            self.with_env(key, value)
        if not host_network:
            self.with_exposed_ports(CONTAINER_PORT)

    @property
    def tracking_uri(self) -> str:
        """What the opsml client's `OPSML_TRACKING_URI` must be set to."""
        if self._host_network:
            return f"http://127.0.0.1:{self._port}"
        host = self.get_container_host_ip()
        return f"http://{host}:{self.get_exposed_port(CONTAINER_PORT)}"

    def start(self) -> OpsmlServerContainer:
        if self._migrate:
            self._run_migrate()
        super().start()
        self._wait_ready()
        return self

    def _run_migrate(self) -> None:
        client = self.get_docker_client().client
        output = client.containers.run(
            self.image,
            ["opsml-server", "migrate"],
            environment=self.env,
            network_mode="host" if self._host_network else None,
            remove=True,
            stdout=True,
            stderr=True,
        )
        if b"database schema at revision" not in output:
            raise OpsmlServerNotReady(f"opsml-server migrate failed: {output[-2000:]!r}")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self._ready_timeout_s
        last = "no answer yet"
        while time.monotonic() < deadline:
            container = self.get_wrapped_container()
            container.reload()
            if container.status in {"exited", "dead"}:
                break
            try:
                with urllib.request.urlopen(self.tracking_uri + READY_PATH, timeout=5) as answer:
                    if answer.status == 200:
                        return
            except urllib.error.HTTPError as error:
                last = f"{error.code} {error.read()[:300].decode(errors='replace')}"
                if NOT_MIGRATED in last:
                    # Waiting cannot help: nothing else migrates a database in a test.
                    raise OpsmlServerNotReady(ERR_NOT_MIGRATED.format(image=self.image)) from None
            except (OSError, ValueError) as error:
                last = type(error).__name__
            time.sleep(0.25)
        logs = b"".join(part for part in self.get_logs() if part)[-3000:]
        raise OpsmlServerNotReady(
            f"opsml-server in {self.image} was not ready within {self._ready_timeout_s:.0f}s "
            f"(last: {last}); log tail:\n{logs.decode(errors='replace')}"
        )
