"""The production image, built from this checkout with the repository's Dockerfile.

The base is `$OPSML_TEST_BASE_IMAGE` if set, else the Dockerfile's default when the engine
already has it, else the stand-in `docker/build-base.sh` builds from Debian packages (kept by
the engine, so only the first run on a machine pays for it). The engine's layer cache keeps the
dependency layer while only app/ changes, so a rebuild after a code change takes seconds.
`python -m tests.containers.image` builds it ahead of time and prints the tag.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.production.dockerfile import global_args
from tests.support.docker_engine import OWN_RUN_DIR, ensure_engine, has_image, run_docker
from tests.support.locks import file_lock

REPO_ROOT = Path(__file__).resolve().parents[2]
STAND_IN_BASE = "opsml-python-base:3.11-bookworm"
TEST_TAG = "opsml-server:test"
BUILD_TIMEOUT_S = 1500


class ImageBuildError(AssertionError):
    pass


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    base: str
    docker_host: str
    build_seconds: float


def base_image(host: str) -> str:
    chosen = os.environ.get("OPSML_TEST_BASE_IMAGE")
    if chosen:
        return chosen
    default = global_args()["BASE_IMAGE"]
    if has_image(host, default):
        return default
    proc = subprocess.run(
        [str(REPO_ROOT / "docker" / "build-base.sh"), STAND_IN_BASE],
        env={**os.environ, "DOCKER_HOST": host},
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    if proc.returncode != 0:
        output = proc.stdout[-2000:] + proc.stderr[-3000:]
        raise ImageBuildError(f"docker/build-base.sh failed:\n{output}")
    return STAND_IN_BASE


def build_image(tag: str = TEST_TAG) -> BuiltImage:
    host = ensure_engine()
    OWN_RUN_DIR.mkdir(parents=True, exist_ok=True)
    with file_lock(OWN_RUN_DIR / "image-build.lock"):
        base = base_image(host)
        started = time.monotonic()
        proc = run_docker(
            host,
            "build",
            "--network",
            "host",
            "--build-arg",
            f"BASE_IMAGE={base}",
            "--tag",
            tag,
            str(REPO_ROOT),
            timeout=BUILD_TIMEOUT_S,
        )
        if proc.returncode != 0:
            output = proc.stdout[-3000:] + proc.stderr[-3000:]
            raise ImageBuildError(f"docker build failed:\n{output}")
        return BuiltImage(tag, base, host, time.monotonic() - started)


if __name__ == "__main__":
    built = build_image(os.environ.get("IMAGE", TEST_TAG))
    print(f"{built.tag} (base {built.base}) built in {built.build_seconds:.1f}s")
