"""TLS to Postgres for real: the throwaway cluster serves a certificate from a CA made here.

sslmode follows libpq: `disable` is plain, `prefer` and `require` encrypt without checking,
`verify-ca` checks the chain against `sslrootcert`, `verify-full` also the host name.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from app.db.engine import build_engine
from app.db.failures import REASON_TLS, REASON_TLS_OTHER
from app.http_errors import ERR_DATABASE_DOWN
from app.main import create_app
from app.settings import Settings
from tests.production.certs import new_authority
from tests.production.pgcluster import OS_USER, ThrowawayCluster, new_cluster
from tests.support.processes import free_port
from tests.support.storage_dirs import storage_dir


@pytest.fixture(scope="module")
def tls_cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ThrowawayCluster, Path]]:
    """A cluster serving TLS for `localhost` only; yields it and its CA file."""
    cluster = new_cluster(free_port())
    try:
        authority = new_authority("opsml test CA")
        cert, key = cluster.base / "server.crt", cluster.base / "server.key"
        authority.issue(cert, key, dns=["localhost"], ips=[])
        account = pwd.getpwnam(OS_USER)
        for path in (cert, key):
            os.chown(path, account.pw_uid, account.pw_gid)
        key.chmod(0o600)
        cluster.restart_with(ssl="on", ssl_cert_file=str(cert), ssl_key_file=str(key))
        ca = authority.write_pem(tmp_path_factory.mktemp("ca") / "ca.pem")
        yield cluster, ca
    finally:
        cluster.destroy()


def _uri(cluster: ThrowawayCluster, host: str, query: str) -> str:
    return f"postgresql://postgres@{host}:{cluster.port}/postgres?{query}"


def _encrypted(uri: str) -> bool:
    engine = build_engine(Settings(OPSML_TRACKING_URI=uri))
    try:
        with engine.connect() as connection:
            return bool(
                connection.execute(
                    text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                ).scalar()
            )
    finally:
        engine.dispose()


def test_sslmodes_connect_as_libpq_documents(
    tls_cluster: tuple[ThrowawayCluster, Path],
) -> None:
    cluster, ca = tls_cluster
    assert _encrypted(_uri(cluster, "localhost", f"sslmode=verify-full&sslrootcert={ca}"))
    # verify-ca checks the chain only: another name for the same server is fine.
    assert _encrypted(_uri(cluster, "127.0.0.1", f"sslmode=verify-ca&sslrootcert={ca}"))
    assert _encrypted(_uri(cluster, "127.0.0.1", "sslmode=require"))
    assert _encrypted(_uri(cluster, "127.0.0.1", "sslmode=prefer"))
    assert _encrypted(_uri(cluster, "127.0.0.1", "application_name=opsml"))  # prefer: default
    assert not _encrypted(_uri(cluster, "127.0.0.1", "sslmode=disable"))


def test_an_unverifiable_server_is_refused_clearly(
    tls_cluster: tuple[ThrowawayCluster, Path], tmp_path: Path
) -> None:
    cluster, _ = tls_cluster
    wrong_ca = new_authority("someone else").write_pem(tmp_path / "wrong-ca.pem")
    right_ca = tls_cluster[1]
    refused = [
        _uri(cluster, "localhost", f"sslmode=verify-full&sslrootcert={wrong_ca}"),
        _uri(cluster, "localhost", f"sslmode=verify-ca&sslrootcert={wrong_ca}"),
        # The certificate names localhost, not 127.0.0.1.
        _uri(cluster, "127.0.0.1", f"sslmode=verify-full&sslrootcert={right_ca}"),
        # require with a root certificate verifies, as in libpq.
        _uri(cluster, "localhost", f"sslmode=require&sslrootcert={wrong_ca}"),
        # No sslrootcert: the system store, which does not hold our test CA.
        _uri(cluster, "localhost", "sslmode=verify-full"),
    ]
    for uri in refused:
        settings = Settings(OPSML_TRACKING_URI=uri, OPSML_STORAGE_URI=storage_dir(tmp_path / "s"))
        with TestClient(create_app(settings, login=False), raise_server_exceptions=False) as app:
            response = app.post("/opsml/cards/list", json={"registry_type": "data"})
            assert (response.status_code, response.json()) == (503, {"detail": ERR_DATABASE_DOWN})
            assert REASON_TLS in app.get("/readyz").json()["checks"]["database"]
        migrate = subprocess.run(
            [sys.executable, "-m", "app", "migrate"],
            env={"OPSML_TRACKING_URI": uri, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert migrate.returncode == 1
        assert migrate.stderr.splitlines() == [
            f"opsml-server: migration failed: {REASON_TLS} (InterfaceError)"
        ], migrate.stderr


def test_requiring_tls_from_a_server_without_it_is_refused(
    pg_cluster: ThrowawayCluster, tmp_path: Path
) -> None:
    uri = f"postgresql://postgres@127.0.0.1:{pg_cluster.port}/postgres?sslmode=require"
    settings = Settings(OPSML_TRACKING_URI=uri, OPSML_STORAGE_URI=storage_dir(tmp_path / "s"))
    with TestClient(create_app(settings, login=False), raise_server_exceptions=False) as app:
        response = app.post("/opsml/cards/list", json={"registry_type": "data"})
        assert response.status_code == 503
        assert REASON_TLS_OTHER in app.get("/readyz").json()["checks"]["database"]
