"""`python -m bench [transfer ...]`: run the benchmarks and print figures beside targets."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from bench import transfer

RESULTS = Path(__file__).parent / "results"


def _row(name: str, value: float, unit: str, target: str, ok: bool) -> str:
    return f"  {name:<34} {value:>10.2f} {unit:<6} target {target:<22} {'PASS' if ok else 'MISS'}"


def report_transfer() -> dict[str, object]:
    result = transfer.run()
    ratio_up = result.upload_mb_s / result.copy_mb_s
    ratio_down = result.download_mb_s / result.copy_mb_s
    print("1 GiB artifact, SQLite + local dir, opsml-uvicorn-server (best of 3)")
    print(_row("plain local copy (cp)", result.copy_mb_s, "MB/s", "-", True))
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


SECTIONS = {"transfer": report_transfer}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("sections", nargs="*", choices=[*SECTIONS, []], default=list(SECTIONS))
    args = parser.parse_args(argv)
    results = {name: SECTIONS[name]() for name in args.sections}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
