"""Child processes for tests and benchmarks: free loopback ports and group-wide shutdown.

Every server or emulator we start runs in its own session (`start_new_session=True`), so
stopping its process group also stops what it spawned (gunicorn workers, node children).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from typing import Any


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
