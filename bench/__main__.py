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
    copy, ceiling = result.copy_mb_s, result.socket_copy_mb_s
    print("1 GiB artifact, SQLite + local dir, best of 3")
    print(_row("plain local copy (cp)", copy, "MB/s", "-", True))
    dd = result.userspace_copy_mb_s
    print(_row("user-space copy (dd bs=1M)", dd, "MB/s", "- (bench/transfer.py)", True))
    print(
        _row(
            "copy through loopback TCP, no HTTP", ceiling, "MB/s", "- (bench/socket_copy.py)", True
        )
    )
    servers = (
        ("ours, opsml-uvicorn-server", result.ours, True),
        ("reference 2.2.4, gunicorn 1 worker", result.reference, False),
    )
    for title, figures, judged in servers:
        print(f"  [{title}]")
        _report_server(figures, copy, ceiling, judged)
    for label, ours, reference in (
        ("upload", result.ours.upload_mb_s, result.reference.upload_mb_s),
        ("download", result.ours.download_mb_s, result.reference.download_mb_s),
    ):
        print(_row(f"{label}: ours / reference", ours / reference, "x", "-", True))
    return asdict(result)


def _report_server(
    figures: transfer.ServerTransfer, copy: float, ceiling: float, judged: bool
) -> None:
    """Rows for one server; the issue's targets apply to ours (`judged`), not the reference."""

    def target(text: str, ok: bool, unjudged: str = "-") -> tuple[str, bool]:
        return (text, ok) if judged else (unjudged, True)

    for label, mb_s in (("upload", figures.upload_mb_s), ("download", figures.download_mb_s)):
        ratio = mb_s / copy
        judged_text, plain = f">= 0.85x copy ({ratio:.2f}x)", f"- ({ratio:.2f}x copy)"
        print(_row(label, mb_s, "MB/s", *target(judged_text, ratio >= 0.85, plain)))
        print(_row(f"{label} vs loopback TCP copy", mb_s / ceiling, "x", "-", True))
    discarded = figures.download_discarded_mb_s
    print(_row("download, client discarding it", discarded, "MB/s", "-", True))
    for label, growth in (
        ("RSS growth during upload", figures.upload_rss_growth_mb),
        ("RSS growth during download", figures.download_rss_growth_mb),
    ):
        print(_row(label, growth, "MB", *target("<= 16 MB", growth <= 16)))
    idle = figures.idle_rss_mb
    print(_row("idle RSS", idle, "MB", *target("<= 90 MB", idle <= 90)))
    if figures.start_to_live_s:  # the reference has no liveness probe
        print(_row("start to live (/livez)", figures.start_to_live_s, "s", "-", True))
    ready = figures.start_to_ready_s
    print(_row("start to healthy", ready, "s", *target("<= 1 s", ready <= 1)))


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
        server_read = r.direct_server_read_mb_s
        streamed = "" if server_read is None else f" / read as the server does {server_read:.1f}"
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
