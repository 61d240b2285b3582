"""Start a server process, wait until it is healthy, and watch its memory."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from tests.support.processes import free_port, stop_group

VENV_BIN = Path(__file__).resolve().parents[1] / ".venv" / "bin"


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except OSError:
        return 0


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _rss(procs: list[psutil.Process]) -> int:
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += proc.memory_info().rss
    return total


def tree_rss(pid: int) -> int:
    """Resident memory of a process and its children (gunicorn master + workers)."""
    return _rss(_tree(pid))


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by a process and its children."""
    total = 0.0
    for proc in _tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


@dataclass
class RssSampler:
    """Samples a process tree's RSS in a thread; `peak` is the maximum seen.

    The tree is read once and only `/proc/<pid>/statm` is polled after that, every 20 ms:
    a sampler that walks /proc every few ms takes a core's worth of time from the server it
    measures on a 2-core machine.
    """

    pid: int
    interval_s: float = 0.02
    peak: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssSampler:
        self._procs = _tree(self.pid)
        self.peak = _rss(self._procs)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss(self._procs))
            time.sleep(self.interval_s)

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


@dataclass
class RunningServer:
    url: str
    pid: int
    start_to_live_s: float
    start_to_ready_s: float


@contextmanager
def server(
    env: Mapping[str, str],
    command: list[str] | None = None,
    log_path: Path | None = None,
    ready_path: str = "/readyz",
) -> Iterator[RunningServer]:
    """Run `opsml-uvicorn-server` (or `command` with {port}) until the block ends."""
    port = free_port()
    argv = command or [str(VENV_BIN / "opsml-uvicorn-server"), "--port", "{port}"]
    argv = [part.replace("{port}", str(port)) for part in argv]
    log = open(log_path or os.devnull, "wb")  # noqa: SIM115 - closed below
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, env={**os.environ, **env}, stdout=log, stderr=log, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    live = ready = 0.0
    try:
        deadline = started + 60
        while time.perf_counter() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}; see {log_path}")
            if not live and _status(f"{url}/livez") == 200:
                live = time.perf_counter() - started
            if (live or ready_path != "/readyz") and _status(f"{url}{ready_path}") == 200:
                ready = time.perf_counter() - started
                break
            time.sleep(0.005)
        else:
            raise RuntimeError("server did not become ready in 60 s")
        yield RunningServer(url=url, pid=proc.pid, start_to_live_s=live, start_to_ready_s=ready)
    except BaseException:
        if log_path is not None:  # the server's side of a failed run, before the log goes
            log.flush()
            print(log_path.read_text(errors="replace")[-4000:], file=sys.stderr)
        raise
    finally:
        stop_group(proc, term_wait_s=30.0)
        log.close()


def reference_python() -> Path:
    """The reference server's interpreter: `opsml[server]==2.2.4` in the compat tests' venv."""
    from tests.compat.venvs import ensure

    venv = ensure("reference")
    check = subprocess.run([str(venv.python), "-c", "import pg8000"], capture_output=True)
    if check.returncode != 0:  # the reference reaches Postgres through pg8000 as well
        subprocess.run(
            [str(venv.python), "-m", "pip", "install", "-q", "pg8000>=1.29.4,<2"], check=True
        )
    return venv.python


@contextmanager
def reference_server(
    env: Mapping[str, str], workers: int, log_path: Path
) -> Iterator[RunningServer]:
    """The reference OpsML 2.2.4 server, run with the seed's production command."""
    python = reference_python()
    command = [
        str(python.parent / "gunicorn"),
        "-k",
        "uvicorn.workers.UvicornWorker",
        "--workers",
        str(workers),
        "--bind=127.0.0.1:{port}",
        "opsml.app.main:run_app()",
    ]
    with server(env, command, log_path=log_path, ready_path="/opsml/healthcheck") as srv:
        yield srv


def curl_upload(base_url: str, source: Path, write_path: str) -> list[str]:
    """The command that uploads `source` as the client does (multipart part `file`)."""
    return [
        "curl",
        "-sS",
        "--fail",
        "-o",
        "/dev/null",
        "-F",
        f"file=@{source}",
        "-H",
        f"write_path: {write_path}",
        f"{base_url}/opsml/files/upload",
    ]


def curl_download(base_url: str, path: str, target: Path | str = "/dev/null") -> list[str]:
    return [
        "curl",
        "-sS",
        "--fail",
        "-o",
        str(target),
        f"{base_url}/opsml/files/download?path={path}",
    ]
