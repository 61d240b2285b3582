"""`python -m bench [transfer ...]`: run the benchmarks and print figures beside targets."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from bench import backends, load, transfer

RESULTS = Path(__file__).parent / "results"


def _row(name: str, value: float, unit: str, target: str, ok: bool) -> str:
    return f"  {name:<34} {value:>10.2f} {unit:<6} target {target:<22} {'PASS' if ok else 'MISS'}"


def report_transfer() -> dict[str, object]:
    result = transfer.run()
    ratio_up = result.upload_mb_s / result.copy_mb_s
    ratio_down = result.download_mb_s / result.copy_mb_s
    print("1 GiB artifact, SQLite + local dir, opsml-uvicorn-server (best of 3)")
    print(_row("plain local copy (cp)", result.copy_mb_s, "MB/s", "-", True))
    dd = result.userspace_copy_mb_s
    print(_row("user-space copy (dd bs=1M)", dd, "MB/s", "- (see bench/transfer.py)", True))
    ceiling = result.socket_copy_mb_s
    print(
        _row(
            "copy through loopback TCP, no HTTP", ceiling, "MB/s", "- (bench/socket_copy.py)", True
        )
    )
    print(
        _row(
            "upload through server",
            result.upload_mb_s,
            "MB/s",
            f">= 0.85x copy ({ratio_up:.2f}x)",
            ratio_up >= 0.85,
        )
    )
    print(
        _row(
            "download through server",
            result.download_mb_s,
            "MB/s",
            f">= 0.85x copy ({ratio_down:.2f}x)",
            ratio_down >= 0.85,
        )
    )
    for label, mb_s in (("upload", result.upload_mb_s), ("download", result.download_mb_s)):
        print(_row(f"{label} vs user-space copy", mb_s / dd, "x", "-", True))
        print(_row(f"{label} vs loopback TCP copy", mb_s / ceiling, "x", "-", True))
    discarded = result.download_discarded_mb_s
    print(_row("download, client discarding it", discarded, "MB/s", "-", True))
    print(
        _row(
            "RSS growth during upload",
            result.upload_rss_growth_mb,
            "MB",
            "<= 16 MB",
            result.upload_rss_growth_mb <= 16,
        )
    )
    print(
        _row(
            "RSS growth during download",
            result.download_rss_growth_mb,
            "MB",
            "<= 16 MB",
            result.download_rss_growth_mb <= 16,
        )
    )
    print(_row("idle RSS", result.idle_rss_mb, "MB", "<= 90 MB", result.idle_rss_mb <= 90))
    print(_row("start to live (/livez)", result.start_to_live_s, "s", "-", True))
    print(
        _row(
            "start to healthy (/readyz)",
            result.start_to_ready_s,
            "s",
            "<= 1 s",
            result.start_to_ready_s <= 1,
        )
    )
    return asdict(result)


def report_load() -> list[dict[str, object]]:
    results = load.run()
    print(
        f"Registry load on Postgres, {load.NAMES * load.VERSIONS:,} DataCards, "
        f"{load.WORKERS} gunicorn workers, wrk with {load.CONNECTIONS} connections"
    )
    for result in results:
        print(f"  [{result.server}]")
        print(
            _row(
                "cards/list by name p50",
                result.list_p50_ms,
                "ms",
                "<= 10 ms",
                result.list_p50_ms <= 10,
            )
        )
        print(_row("cards/list by name p95", result.list_p95_ms, "ms", "-", True))
        print(_row("cards/list by uid p50", result.uid_p50_ms, "ms", "-", True))
        print(_row("read throughput", result.reads_per_s, "req/s", "-", True))
        print(_row("server CPU per read", result.cpu_ms_per_read, "ms", "-", True))
        print(
            _row(
                f"distinct versions of {load.REGISTRATIONS}",
                result.distinct_versions,
                "",
                f"= {load.REGISTRATIONS}",
                result.distinct_versions == load.REGISTRATIONS,
            )
        )
        print(
            _row(
                "registration errors",
                result.registration_errors,
                "",
                "= 0",
                result.registration_errors == 0,
            )
        )
    if len(results) == 2:
        ratio = results[0].reads_per_s / results[1].reads_per_s
        print(_row("read throughput vs reference", ratio, "x", ">= 2x", ratio >= 2))
        cpu_ratio = results[1].cpu_ms_per_read / results[0].cpu_ms_per_read
        print(_row("reference CPU per read / ours", cpu_ratio, "x", "-", True))
    return [asdict(r) for r in results]


def report_backends() -> list[dict[str, object]]:
    results = backends.run()
    print(
        f"Per backend, {backends.SIZE // 2**20} MiB through the server vs fsspec direct "
        "(emulators on loopback)"
    )
    for r in results:
        up, down = r.upload_mb_s / r.direct_write_mb_s, r.download_mb_s / r.direct_read_mb_s
        stream_mb_s = r.direct_stream_mb_s
        streamed = "" if stream_mb_s is None else f" / streamed GET {stream_mb_s:.1f}"
        print(
            f"  [{r.backend}] direct write {r.direct_write_mb_s:.1f} / read "
            f"{r.direct_read_mb_s:.1f}{streamed} MB/s"
        )
        if r.backend == "local":
            # An in-process read of a cached file is memory speed; no HTTP transfer compares.
            # The local directory's target is the transfer section's (against a file copy).
            print(_row("upload through server", r.upload_mb_s, "MB/s", "- (see transfer)", True))
            print(_row("download through server", r.download_mb_s, "MB/s", "-", True))
            continue
        print(
            _row(
                "upload through server",
                r.upload_mb_s,
                "MB/s",
                f">= 0.8x direct ({up:.2f}x)",
                up >= 0.8,
            )
        )
        print(
            _row(
                "download through server",
                r.download_mb_s,
                "MB/s",
                f">= 0.8x direct ({down:.2f}x)",
                down >= 0.8,
            )
        )
        print(_row("server RSS growth", r.rss_growth_mb, "MB", "<= 32 MB", r.rss_growth_mb <= 32))
    return [asdict(r) for r in results]


SECTIONS = {"transfer": report_transfer, "backends": report_backends, "load": report_load}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument(
        "sections",
        nargs="*",
        default=list(SECTIONS),
        help=f"any of: {', '.join(SECTIONS)} (default: all)",
    )
    args = parser.parse_args(argv)
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    results = {name: SECTIONS[name]() for name in args.sections}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
