"""A throwaway PostgreSQL 15 cluster that a test may stop and start at will.

`initdb` + `pg_ctl` run as the `postgres` OS user in a fresh temporary directory, with trust
auth, listening on 127.0.0.1 only, on a free port and with its socket in that directory. The
machine's main cluster (5432) is never touched. `destroy()` stops it (immediate mode) and
removes the directory.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from sqlalchemy import create_engine, text

PG_BIN = Path("/usr/lib/postgresql/15/bin")
OS_USER = "postgres"


@dataclass
class ThrowawayCluster:
    port: int
    base: Path
    # Extra `-c name=value` settings for every start (e.g. TLS).
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def log(self) -> Path:
        return self.base / "server.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+pg8000://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *argv: str, timeout: float = 60) -> None:
        account = pwd.getpwnam(OS_USER)
        env = {"PATH": f"{PG_BIN}:/usr/bin:/bin", "HOME": str(self.base), "LC_ALL": "C.UTF-8"}
        proc = subprocess.run(
            [str(PG_BIN / argv[0]), *argv[1:]],
            user=account.pw_uid,
            group=account.pw_gid,
            extra_groups=[],
            env=env,
            cwd=self.base,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"{argv[0]} exited {proc.returncode}: {proc.stderr[-2000:]}\n{self.log_tail()}"
            )

    def log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def init(self) -> ThrowawayCluster:
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        return self

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c max_connections=100 -c shared_buffers=32MB"
        ) + "".join(f" -c {name}={value}" for name, value in self.settings.items())
        # -w: return when the server accepts connections; its output goes to our log file.
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def processes(self) -> list[psutil.Process]:
        """The postmaster and every backend (its children)."""
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        postmaster = psutil.Process(pid)
        return [postmaster, *postmaster.children(recursive=True)]

    def freeze(self) -> None:
        """SIGSTOP the whole cluster: connections stay open and nothing answers."""
        for process in self.processes():
            process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        for process in self.processes():
            process.send_signal(signal.SIGCONT)

    def restart_with(self, **settings: str) -> None:
        self.stop("fast")
        self.settings.update(settings)
        self.start()

    def is_running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def create_database(self, name: str) -> str:
        engine = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        return self.url(name)

    def destroy(self) -> None:
        if self.is_running():
            with contextlib.suppress(RuntimeError):
                self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)


def new_cluster(port: int) -> ThrowawayCluster:
    if not (PG_BIN / "initdb").exists():
        raise RuntimeError(f"PostgreSQL 15 server binaries not found in {PG_BIN}")
    base = Path(tempfile.mkdtemp(prefix="opsml-pg-"))
    account = pwd.getpwnam(OS_USER)
    os.chown(base, account.pw_uid, account.pw_gid)
    os.chmod(base, 0o700)
    cluster = ThrowawayCluster(port=port, base=base).init()
    started = time.monotonic()
    cluster.start()
    if time.monotonic() - started > 60:
        raise RuntimeError("throwaway PostgreSQL took over a minute to start")
    return cluster
