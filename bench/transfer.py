"""1 GiB artifact through the server vs. a plain file copy on the same disk."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.harness import RssSampler, curl_download, curl_upload, server, tree_rss

GIB = 1024**3
WRITE_PATH = "opsml-root:/OPSML_MODEL_REGISTRY/bench/artifact/v1.0.0/blob.bin"


@dataclass
class TransferResult:
    copy_mb_s: float
    userspace_copy_mb_s: float
    upload_mb_s: float
    download_mb_s: float
    upload_rss_growth_mb: float
    download_rss_growth_mb: float
    idle_rss_mb: float
    start_to_live_s: float
    start_to_ready_s: float


def _make_file(path: Path, size: int) -> None:
    chunk = os.urandom(8 * 1024 * 1024)
    with open(path, "wb") as handle:
        for _ in range(size // len(chunk)):
            handle.write(chunk)
    os.sync()


def _timed(argv: list[str]) -> float:
    # Every timed run, copy or transfer, starts with no dirty pages from the previous one, so
    # none of them pays for another's writeback; none includes its own flush to disk.
    os.sync()
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def _mb_s(size: int, seconds: float) -> float:
    return size / seconds / 1e6


def best_of(runs: int, argv: list[str]) -> float:
    """Fastest of `runs`; `{n}` in an argument becomes the run number (distinct targets)."""
    return min(_timed([a.replace("{n}", str(n)) for a in argv]) for n in range(runs))


def run(size: int = GIB, runs: int = 3, base: Path | None = None) -> TransferResult:
    work = Path(tempfile.mkdtemp(prefix="opsml-bench-", dir=base))
    try:
        source = work / "source.bin"
        _make_file(source, size)
        copy_s = best_of(runs, ["cp", str(source), str(work / "copy-{n}.bin")])
        # cp (coreutils 9) copies inside the kernel with copy_file_range. Anything that
        # crosses user space, as every HTTP transfer and its client do, pays for read() and
        # write() of every byte: dd with 1 MiB blocks is that plain copy, shown beside cp.
        dd_target = f"of={work / 'dd-{n}.bin'}"
        userspace_s = best_of(runs, ["dd", f"if={source}", dd_target, "bs=1M", "status=none"])
        env = {
            "OPSML_TRACKING_URI": f"sqlite:///{work / 'opsml.db'}",
            "OPSML_STORAGE_URI": str(work / "storage"),
        }
        with server(env, log_path=work / "server.log") as srv:
            time.sleep(1.0)  # let import-time garbage settle before calling it idle
            idle = tree_rss(srv.pid)
            # `{n}`: every run writes a new artifact and a new local file (see best_of).
            with RssSampler(srv.pid) as up:
                upload_s = best_of(runs, curl_upload(srv.url, source, f"{WRITE_PATH}{{n}}"))
            downloaded = work / "download-{n}.bin"
            with RssSampler(srv.pid) as down:
                download_s = best_of(runs, curl_download(srv.url, f"{WRITE_PATH}0", downloaded))
            if (work / "download-0.bin").stat().st_size != size:
                raise RuntimeError("download size mismatch")
        return TransferResult(
            copy_mb_s=_mb_s(size, copy_s),
            userspace_copy_mb_s=_mb_s(size, userspace_s),
            upload_mb_s=_mb_s(size, upload_s),
            download_mb_s=_mb_s(size, download_s),
            upload_rss_growth_mb=(up.peak - idle) / 1e6,
            download_rss_growth_mb=(down.peak - idle) / 1e6,
            idle_rss_mb=idle / 1e6,
            start_to_live_s=srv.start_to_live_s,
            start_to_ready_s=srv.start_to_ready_s,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
