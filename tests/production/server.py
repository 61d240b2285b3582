"""gunicorn as the image starts it, on a loopback port, in its own process group.

The command is the Dockerfile's CMD (parsed, never retyped). The image binds through
`PORT` (gunicorn_conf's `0.0.0.0:$PORT`); tests must stay on loopback, so they pass
`GUNICORN_CMD_ARGS=--bind=127.0.0.1:<port>`, which gunicorn applies over the config file,
leaving the CMD itself untouched.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from tests.compat.harness import clean_environ
from tests.production.dockerfile import image_steps
from tests.support.processes import free_port, poll_http, stop_group

START_TIMEOUT_S = 60.0


class ServerStartError(RuntimeError):
    pass


@dataclass
class Gunicorn:
    bin_dir: Path
    env: Mapping[str, str]
    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    # Replaces the CMD's app (its last word), e.g. a test app wrapping ours; None: the CMD's.
    app_spec: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "gunicorn.log"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def argv(self) -> list[str]:
        cmd = image_steps().cmd
        if self.app_spec is not None:
            cmd = [*cmd[:-1], self.app_spec]
        return [str(self.bin_dir / cmd[0]), *cmd[1:]]

    def start(self, ready_path: str = "/livez") -> Gunicorn:
        prometheus = self.workdir / "prometheus"
        prometheus.mkdir(parents=True, exist_ok=True)
        env = {
            **clean_environ(),
            "PATH": f"{self.bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "PROMETHEUS_MULTIPROC_DIR": str(prometheus),
            **self.env,
            "PORT": str(self.port),
            "GUNICORN_CMD_ARGS": f"--bind=127.0.0.1:{self.port}",
        }
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv(),
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self.wait_until(ready_path, 200, START_TIMEOUT_S)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_until(self, path: str, status: int, timeout_s: float) -> httpx.Response:
        poll = poll_http(
            self.url + path,
            alive=lambda: self.proc is not None and self.proc.poll() is None,
            timeout_s=timeout_s,
            status=status,
            request_timeout_s=5.0,
        )
        return poll.response_or_raise(
            ServerStartError, f"gunicorn (waiting for {status})", lambda: self.log_text()[-4000:]
        )

    def worker_pids(self) -> set[int]:
        assert self.proc is not None
        return {child.pid for child in psutil.Process(self.proc.pid).children()}

    def wait_workers(self, count: int, timeout_s: float = 30.0) -> set[int]:
        """Worker pids once `count` workers have booted (gunicorn forks them one by one)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            pids = self.worker_pids()
            if len(pids) == count and "Booting worker with pid" in self.log_text():
                booted = self.log_text().count("Booting worker with pid")
                if booted >= count:
                    return pids
            time.sleep(0.2)
        raise ServerStartError(f"expected {count} workers, have {self.worker_pids()}")

    def sigterm(self) -> None:
        """What `docker stop` and the kubelet do: SIGTERM to the master (PID 1) only."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGTERM)

    def wait_exit(self, timeout_s: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout_s)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_group(proc)
