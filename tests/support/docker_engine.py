"""A reachable Docker engine for the container tests: the user's, or one we start ourselves.

`ensure_engine()` returns a `DOCKER_HOST` value. It uses, in order: `$DOCKER_HOST` if it
answers, the default socket if it answers, an engine this module started earlier (its socket
under /run/opsml-server-docker), or it starts `dockerd` itself as root with its own data root
(so built images stay cached between runs), its own exec root and socket, no bridge and no
iptables: containers use the host network, so traffic stays on this machine. An engine that
cannot be had is an `EngineUnavailable` error naming what to install, never a skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from tests.support.locks import file_lock

OWN_RUN_DIR = Path("/run/opsml-server-docker")
OWN_SOCKET = OWN_RUN_DIR / "docker.sock"
OWN_DATA_ROOT = Path(os.environ.get("OPSML_TEST_DOCKER_ROOT", "/var/lib/opsml-server-docker"))
DEFAULT_SOCKET = "unix:///var/run/docker.sock"
START_TIMEOUT_S = 60.0

ERR_NO_ENGINE = (
    "no Docker engine is reachable and none can be started here ({why}); install one "
    "(Debian: apt-get install docker.io) or point DOCKER_HOST at a running engine"
)


class EngineUnavailable(RuntimeError):
    pass


def docker_cli() -> str:
    found = shutil.which("docker")
    if found is None:
        raise EngineUnavailable(ERR_NO_ENGINE.format(why="no docker command"))
    return found


def run_docker(host: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`docker ARGS` against the engine at `host`, output captured, never raising on failure."""
    return subprocess.run(
        [docker_cli(), *args],
        env={**os.environ, "DOCKER_HOST": host},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def has_image(host: str, name: str) -> bool:
    return run_docker(host, "image", "inspect", name).returncode == 0


def answers(host: str) -> bool:
    try:
        proc = subprocess.run(
            [docker_cli(), "version", "--format", "{{.Server.Version}}"],
            env={**os.environ, "DOCKER_HOST": host},
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0 and bool(proc.stdout.strip())


def _start_own_engine() -> str:
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise EngineUnavailable(ERR_NO_ENGINE.format(why="no dockerd binary"))
    if os.geteuid() != 0:
        raise EngineUnavailable(ERR_NO_ENGINE.format(why="starting dockerd needs root"))
    OWN_RUN_DIR.mkdir(parents=True, exist_ok=True)
    OWN_DATA_ROOT.mkdir(parents=True, exist_ok=True)
    log = (OWN_RUN_DIR / "dockerd.log").open("ab")
    subprocess.Popen(
        [
            dockerd,
            "--host",
            f"unix://{OWN_SOCKET}",
            "--data-root",
            str(OWN_DATA_ROOT),
            "--exec-root",
            str(OWN_RUN_DIR / "exec"),
            "--pidfile",
            str(OWN_RUN_DIR / "dockerd.pid"),
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # outlives this pytest run: the next one reuses it
    )
    host = f"unix://{OWN_SOCKET}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if answers(host):
            return host
        time.sleep(0.5)
    tail = (OWN_RUN_DIR / "dockerd.log").read_text(errors="replace")[-2000:]
    raise EngineUnavailable(
        ERR_NO_ENGINE.format(why=f"dockerd did not answer within {START_TIMEOUT_S:.0f}s")
        + f"\n{tail}"
    )


def ensure_engine() -> str:
    """A DOCKER_HOST value whose engine answers now."""
    given = os.environ.get("DOCKER_HOST")
    if given:
        if answers(given):
            return given
        raise EngineUnavailable(ERR_NO_ENGINE.format(why=f"DOCKER_HOST={given} does not answer"))
    if Path(DEFAULT_SOCKET.removeprefix("unix://")).exists() and answers(DEFAULT_SOCKET):
        return DEFAULT_SOCKET
    OWN_RUN_DIR.mkdir(parents=True, exist_ok=True)
    with file_lock(OWN_RUN_DIR / "start.lock"):
        own = f"unix://{OWN_SOCKET}"
        if OWN_SOCKET.exists() and answers(own):
            return own
        return _start_own_engine()


if __name__ == "__main__":
    print(ensure_engine())  # for the Makefile: DOCKER_HOST=$(python -m tests.support.docker_engine)
