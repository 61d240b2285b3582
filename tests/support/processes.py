"""Child processes for tests and benchmarks: free loopback ports, waiting for one to answer
over HTTP, and group-wide shutdown.

Every server or emulator we start runs in its own session (`start_new_session=True`), so
stopping its process group also stops what it spawned (gunicorn workers, node children).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def stop_group(
    proc: subprocess.Popen[Any], term_wait_s: float = 20.0, kill_wait_s: float = 10.0
) -> None:
    """SIGTERM the process's group, SIGKILL it if it lingers; a group already gone is fine."""
    for sig, wait_s in ((signal.SIGTERM, term_wait_s), (signal.SIGKILL, kill_wait_s)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue


@dataclass(frozen=True)
class HttpPoll:
    """How waiting for an HTTP answer ended: `response` on success, else `exited` (the process
    died first) or a timeout, with `last` describing the last answer or error seen."""

    url: str
    timeout_s: float
    response: httpx.Response | None
    exited: bool
    last: str

    def response_or_raise(
        self, error: type[Exception], what: str, log_tail: Callable[[], str]
    ) -> httpx.Response:
        """The response, or `error` saying how `what` failed to answer, with its log's tail."""
        if self.response is not None:
            return self.response
        if self.exited:
            raise error(f"{what} exited before answering {self.url}; log:\n{log_tail()}")
        raise error(
            f"{what} did not answer {self.url} within {self.timeout_s:.0f} s "
            f"(last: {self.last}); log:\n{log_tail()}"
        )


def poll_http(
    url: str,
    *,
    alive: Callable[[], bool],
    timeout_s: float,
    status: int | None = None,
    interval_s: float = 0.2,
    request_timeout_s: float = 2.0,
) -> HttpPoll:
    """GET `url` until it answers `status` (any status when None), the process stops being
    `alive()`, or `timeout_s` passes. Callers turn the outcome into their own error."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if not alive():
            return HttpPoll(url, timeout_s, response=None, exited=True, last=last)
        try:
            response = httpx.get(url, timeout=request_timeout_s)
            if status is None or response.status_code == status:
                return HttpPoll(url, timeout_s, response=response, exited=False, last="")
            last = f"{response.status_code} {response.text[:300]}"
        except httpx.HTTPError as error:
            last = type(error).__name__
        time.sleep(interval_s)
    return HttpPoll(url, timeout_s, response=None, exited=False, last=last)
