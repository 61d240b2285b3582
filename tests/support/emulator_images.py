"""Stand-in images of the storage emulators, for `OPSML_TEST_CONTAINERS=1` without a registry.

Each image holds the very packages the local processes run: moto's server installed at the
version of constraints.txt, the fake-gcs-server binary of the Python wrapper package, and
Azurite from this repository's node_modules with the host's node. They start from the same
Debian stand-in base as the server image (`docker/build-base.sh`). A tag carries a digest of its
inputs, so an image is built once per machine and again only when an input changes. The public
images (MinIO, fake-gcs-server, Azurite) are used instead when the engine already has them.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.support.docker_engine import OWN_RUN_DIR, ensure_engine, has_image, run_docker
from tests.support.locks import file_lock

REPO_ROOT = Path(__file__).resolve().parents[2]
BASE = "opsml-python-base:3.11-bookworm"
BUILD_TIMEOUT_S = 900


class EmulatorImageError(RuntimeError):
    pass


@dataclass(frozen=True)
class StandIn:
    name: str
    dockerfile: str
    files: dict[str, Path]  # name in the build context -> file or directory on this machine
    keyed_by: tuple[Path, ...]  # the files whose content decides the tag

    def digest(self) -> str:
        h = hashlib.sha256(self.dockerfile.encode())
        for path in self.keyed_by:
            h.update(path.read_bytes())
        return h.hexdigest()[:12]

    @property
    def tag(self) -> str:
        return f"opsml-test-{self.name}:{self.digest()}"


def _moto() -> StandIn:
    return StandIn(
        "moto",
        f"FROM {BASE}\n"
        "COPY constraints.txt /tmp/constraints.txt\n"
        "RUN python -m venv /opt/moto && /opt/moto/bin/pip install --no-cache-dir "
        "-c /tmp/constraints.txt 'moto[server]'\n"
        'ENTRYPOINT ["/opt/moto/bin/moto_server"]\n',
        {"constraints.txt": REPO_ROOT / "constraints.txt"},
        (REPO_ROOT / "constraints.txt",),
    )


def _fake_gcs() -> StandIn:
    from tests.support.emulators import fake_gcs_binary

    return StandIn(
        "fake-gcs",
        f"FROM {BASE}\nCOPY fake-gcs-server /usr/local/bin/fake-gcs-server\n"
        'ENTRYPOINT ["/usr/local/bin/fake-gcs-server"]\n',
        {"fake-gcs-server": fake_gcs_binary()},
        (fake_gcs_binary(),),
    )


def _azurite() -> StandIn:
    node = shutil.which("node")
    if node is None:
        raise EmulatorImageError("node is not on PATH: Azurite's stand-in image copies it")
    main = "/opt/azurite/node_modules/azurite/dist/src/blob/main.js"
    return StandIn(
        "azurite",
        f"FROM {BASE}\nCOPY node /usr/local/bin/node\n"
        "COPY node_modules /opt/azurite/node_modules\n"
        f'ENTRYPOINT ["/usr/local/bin/node", "{main}"]\n',
        {"node": Path(node).resolve(), "node_modules": REPO_ROOT / "node_modules"},
        (Path(node).resolve(), REPO_ROOT / "package-lock.json"),
    )


STAND_INS = {"moto": _moto, "fake-gcs": _fake_gcs, "azurite": _azurite}


def engine_has_image(name: str) -> bool:
    return has_image(ensure_engine(), name)


def stand_in_image(name: str) -> str:
    """The tag of the stand-in `name` (moto, fake-gcs, azurite), built if the engine lacks it."""
    host = ensure_engine()
    spec = STAND_INS[name]()
    OWN_RUN_DIR.mkdir(parents=True, exist_ok=True)
    with file_lock(OWN_RUN_DIR / f"emulator-{name}.lock"):
        if run_docker(host, "image", "inspect", spec.tag).returncode == 0:
            return spec.tag
        if run_docker(host, "image", "inspect", BASE).returncode != 0:
            from tests.containers.image import base_image

            base_image(host)  # builds the Debian stand-in base
        with tempfile.TemporaryDirectory(prefix=f"opsml-{name}-image-") as context:
            for target, source in spec.files.items():
                if source.is_dir():
                    shutil.copytree(source, Path(context) / target, symlinks=True)
                else:
                    shutil.copy2(source, Path(context) / target)
            (Path(context) / "Dockerfile").write_text(spec.dockerfile)
            proc = run_docker(
                host, "build", "--network", "host", "--tag", spec.tag, context,
                timeout=BUILD_TIMEOUT_S,
            )  # fmt: skip
        if proc.returncode != 0:
            output = proc.stdout[-2000:] + proc.stderr[-2000:]
            raise EmulatorImageError(f"building {spec.tag} failed:\n{output}")
        return spec.tag
