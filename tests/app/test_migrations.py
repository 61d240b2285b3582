"""Migrations: create, adopt an OpsML 2.2.4 database without losing a row, run concurrently."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect, text

from app.db.engine import build_engine
from app.db.migrate import SCHEMA_HEAD, VERSION_TABLE, current_revision, run_migrations
from app.db.tables import VersionClaim
from app.main import create_app
from app.settings import Settings
from tests.support.postgres import fresh_postgres_database
from tests.support.storage_dirs import storage_dir

REFERENCE_DDL = (Path(__file__).parent / "fixtures" / "reference_2_2_4_sqlite.sql").read_text()

# Rows as the reference server stored them (docs/reference-2.2.4.md), JSON columns as TEXT.
REFERENCE_ROWS = [
    (
        "OPSML_DATA_REGISTRY",
        {
            "uid": "a4f80cc15b95416283ebade83ba7bbfb",
            "date": "2026-11-28",
            "timestamp": 1795851541492450,
            "app_env": "development",
            "name": "compat-data",
            "repository": "compat-repo",
            "version": "1.1.0",
            "contact": "a@b.c",
            "tags": "{}",
            "data_type": "pandas.core.frame.DataFrame",
        },
    ),
    (
        "OPSML_DATA_REGISTRY",
        {
            "uid": "af432bd0afec472d8e94dbfd6e016fb2",
            "date": "2026-11-28",
            "timestamp": 1795851541492450,
            "app_env": "development",
            "name": "compat-data",
            "repository": "compat-repo",
            "version": "3.0.0-rc.1",
            "contact": "a@b.c",
            "tags": "{}",
            "data_type": "pandas.core.frame.DataFrame",
        },
    ),
    (
        "OPSML_RUN_REGISTRY",
        {
            "uid": "fc31c513fcf140e89be9baf9c95e1d8c",
            "date": "2026-11-28",
            "timestamp": 1795851541494405,
            "app_env": "development",
            "name": "fc31c51",
            "repository": "compat-repo",
            "version": "1.0.0",
            "contact": "a@b.c",
            "tags": '{"data:run-data": "1.0.0"}',
            "datacard_uids": '["167b2380d870434aac5db1dadff81343"]',
            "modelcard_uids": "[]",
            "project": "compat-project",
            "artifact_uris": "{}",
        },
    ),
    (
        "OPSML_PROJECT_REGISTRY",
        {
            "uid": "bd53c02eaeea47fda52447fcd24fa670",
            "name": "compat-project",
            "repository": "compat-repo",
            "project_id": 1,
            "version": "1.0.0",
            "timestamp": 1795851541496326,
        },
    ),
    (
        "OPSML_RUN_METRICS",
        {
            "uid": "fc31c513fcf140e89be9baf9c95e1d8c",
            "name": "mae",
            "value": 1.5,
            "step": 1,
            "date_ts": "2026-11-28 07:39:01.914822",
        },
    ),
]


def _postgres_ddl(ddl: str) -> str:
    # What SQLAlchemy's create_all emits on Postgres for the two integer keys.
    return ddl.replace("project_id INTEGER NOT NULL", "project_id SERIAL NOT NULL").replace(
        "idx INTEGER NOT NULL", "idx SERIAL NOT NULL"
    )


def _seed_reference_database(url: str) -> None:
    engine = create_engine(url)
    ddl = REFERENCE_DDL if url.startswith("sqlite") else _postgres_ddl(REFERENCE_DDL)
    with engine.begin() as connection:
        for statement in ddl.split(";"):
            if "CREATE" in statement:
                connection.exec_driver_sql(statement)
        for table, row in REFERENCE_ROWS:
            columns = ", ".join(row)
            values = ", ".join(f":{key}" for key in row)
            connection.execute(text(f'INSERT INTO "{table}" ({columns}) VALUES ({values})'), row)
    engine.dispose()


def _same(stored: object, seeded: object) -> bool:
    """Postgres hands JSON columns back parsed, SQLite as the text that was stored."""
    if stored == seeded:
        return True
    if isinstance(seeded, str) and seeded[:1] in "[{":
        parsed = json.loads(stored) if isinstance(stored, str) else stored
        return bool(parsed == json.loads(seeded))
    return False


@pytest.fixture
def empty_database_url(database_url: str) -> Iterator[str]:
    """A database with no tables at all (a fresh Postgres database per test)."""
    if database_url.startswith("sqlite"):
        yield database_url
        return
    with fresh_postgres_database("opsml_migrate") as url:
        yield url


def test_schema_head_constant_matches_the_migration_scripts() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(Path("app/db/migrations").resolve()))
    assert ScriptDirectory.from_config(config).get_current_head() == SCHEMA_HEAD


def test_adopting_a_reference_database_keeps_every_row(
    empty_database_url: str, tmp_path: Path
) -> None:
    _seed_reference_database(empty_database_url)
    settings = Settings(OPSML_TRACKING_URI=empty_database_url, OPSML_STORAGE_URI=str(tmp_path))
    engine = build_engine(settings)
    assert current_revision(engine) is None
    assert run_migrations(engine) == SCHEMA_HEAD
    with engine.connect() as connection:
        for table, row in REFERENCE_ROWS:
            key = "project_id" if table == "OPSML_PROJECT_REGISTRY" else "uid"
            stored = (
                connection.execute(
                    text(f'SELECT * FROM "{table}" WHERE {key} = :k'), {"k": row[key]}
                )
                .mappings()
                .one()
            )
            for column, value in row.items():
                assert _same(stored[column], value), (table, column)
        # The reference server's own alembic table is left exactly as it was (empty).
        assert connection.execute(text("SELECT count(*) FROM opsml_alembic_version")).scalar() == 0
    assert VERSION_TABLE in inspect(engine).get_table_names()
    engine.dispose()

    with TestClient(create_app(settings, login=False)) as client:
        cards = client.post(
            "/opsml/cards/list",
            json={"registry_type": "data", "name": "compat-data", "repository": "compat-repo"},
        ).json()["cards"]
        assert [c["version"] for c in cards] == ["3.0.0-rc.1", "1.1.0"]
        assert cards[1]["tags"] == {} and cards[1]["data_type"] == "pandas.core.frame.DataFrame"
        [run] = client.post(
            "/opsml/cards/list",
            json={"registry_type": "run", "uid": "fc31c513fcf140e89be9baf9c95e1d8c"},
        ).json()["cards"]
        assert run["datacard_uids"] == ["167b2380d870434aac5db1dadff81343"]
        metrics = client.post("/opsml/metrics", json={"run_uid": run["uid"]}).json()["metric"]
        assert [(m["name"], m["value"]) for m in metrics] == [("mae", 1.5)]
        # New writes continue the reference's sequences.
        assert client.get(
            "/opsml/projects/id", params={"project_name": "next", "repository": "compat-repo"}
        ).json() == {"project_id": 2}
        client.put(
            "/opsml/metrics",
            json={"metric": [{"run_uid": run["uid"], "name": "mae", "value": 2.0}]},
        )
        assert (
            len(client.post("/opsml/metrics", json={"run_uid": run["uid"]}).json()["metric"]) == 2
        )


def test_migrating_twice_is_a_no_op(empty_database_url: str) -> None:
    settings = Settings(OPSML_TRACKING_URI=empty_database_url)
    engine = build_engine(settings)
    run_migrations(engine)
    tables = sorted(inspect(engine).get_table_names())
    assert run_migrations(engine) == SCHEMA_HEAD
    assert sorted(inspect(engine).get_table_names()) == tables
    engine.dispose()


def test_replicas_migrating_at_once_do_not_race(empty_database_url: str) -> None:
    env = {"OPSML_TRACKING_URI": empty_database_url, "PATH": "/usr/bin:/bin"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "app", "migrate"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [(*p.communicate(timeout=120), p.returncode) for p in procs]
    assert all(code == 0 for _, _, code in results), results
    engine = build_engine(Settings(OPSML_TRACKING_URI=empty_database_url))
    assert current_revision(engine) == SCHEMA_HEAD
    engine.dispose()


def test_unmigrated_postgres_is_not_ready_until_migrated(tmp_path: Path) -> None:
    with fresh_postgres_database("opsml_ready") as url:
        _check_readiness_follows_migration(url, tmp_path)


def _check_readiness_follows_migration(url: str, tmp_path: Path) -> None:
    settings = Settings(OPSML_TRACKING_URI=url, OPSML_STORAGE_URI=str(tmp_path))
    with TestClient(create_app(settings, login=False)) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert "opsml-server migrate" in response.json()["checks"]["database"]
        engine = build_engine(settings)
        run_migrations(engine)
        engine.dispose()
        assert client.get("/readyz").status_code == 200


def _shape(url: str) -> dict[str, tuple[list[str], list[str]]]:
    engine = create_engine(url)
    inspector = inspect(engine)
    shape = {
        table: (
            sorted(c["name"] for c in inspector.get_columns(table)),
            sorted(str(i["name"]) for i in inspector.get_indexes(table)),
        )
        for table in inspector.get_table_names()
        if table != "opsml_alembic_version"  # the reference's own, only in the adopted one
    }
    engine.dispose()
    return shape


def test_new_and_adopted_databases_end_with_the_same_schema(tmp_path: Path) -> None:
    fresh, adopted = f"sqlite:///{tmp_path / 'fresh.db'}", f"sqlite:///{tmp_path / 'adopted.db'}"
    _seed_reference_database(adopted)
    for url in (fresh, adopted):
        engine = build_engine(Settings(OPSML_TRACKING_URI=url))
        run_migrations(engine)
        engine.dispose()
    assert _shape(fresh) == _shape(adopted)
    assert (
        "ix_opsml_server_opsml_data_registry_name_repo" in _shape(fresh)["OPSML_DATA_REGISTRY"][1]
    )


def test_a_new_sqlite_file_that_another_writer_holds_still_starts_in_wal(tmp_path: Path) -> None:
    # Two workers starting on a new file: one still writes while the other switches it to WAL.
    # SQLite refuses that switch at once ("database is locked") instead of waiting, and a
    # gunicorn worker that failed so took the whole server down with it.
    path = tmp_path / "opsml.db"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("CREATE TABLE other_process (x INTEGER)")
    writer.execute("BEGIN")
    writer.execute("INSERT INTO other_process VALUES (1)")
    release = threading.Timer(0.5, writer.execute, args=("COMMIT",))
    release.start()
    engine = build_engine(Settings(OPSML_TRACKING_URI=f"sqlite:///{path}"))
    try:
        assert run_migrations(engine) == SCHEMA_HEAD
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        release.join()
        writer.close()
        engine.dispose()


# Per column, in table order: name, declared type, NOT NULL, default. The reference's tables
# only: ours adds the claims table and indexes, which the adoption test covers.
Columns = dict[str, list[tuple[object, ...]]]
REFERENCE_TABLES = (
    "OPSML_DATA_REGISTRY",
    "OPSML_MODEL_REGISTRY",
    "OPSML_RUN_REGISTRY",
    "OPSML_PIPELINE_REGISTRY",
    "OPSML_PROJECT_REGISTRY",
    "OPSML_AUDIT_REGISTRY",
    "OPSML_RUN_METRICS",
)


def _columns(url: str) -> Columns:
    engine = create_engine(url)
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            columns = {
                table: [
                    tuple(row[1:])  # name, type, notnull, default, pk
                    for row in connection.exec_driver_sql(f'PRAGMA table_info("{table}")')
                ]
                for table in REFERENCE_TABLES
            }
        else:
            columns = {
                table: [
                    tuple(row)
                    for row in connection.execute(
                        text(
                            "SELECT column_name, data_type, character_maximum_length, "
                            "is_nullable, column_default FROM information_schema.columns "
                            "WHERE table_name = :t ORDER BY ordinal_position"
                        ),
                        {"t": table},
                    )
                ]
                for table in REFERENCE_TABLES
            }
    engine.dispose()
    return columns


def test_a_new_database_has_exactly_the_reference_columns(empty_database_url: str) -> None:
    # Types, nullability, defaults and order, against the reference's own DDL on the same
    # database engine. SQLAlchemy 2.1 read `Mapped[Any]` as NOT NULL and put an abstract
    # base's columns last; the pins allow both 2.0 and 2.1.
    engine = build_engine(Settings(OPSML_TRACKING_URI=empty_database_url))
    run_migrations(engine)
    engine.dispose()
    ours = _columns(empty_database_url)
    with fresh_postgres_database("opsml_ref_ddl") as reference_pg:
        reference = empty_database_url.replace(".db", "-reference.db")
        if not empty_database_url.startswith("sqlite"):
            reference = reference_pg
        _seed_reference_database(reference)
        assert ours == _columns(reference)
    assert ours["OPSML_DATA_REGISTRY"][8][0] == "tags"


def test_reference_fixture_is_what_the_reference_server_creates(tmp_path: Path) -> None:
    # The DDL above is only as good as the fixture: build a database with the real opsml
    # 2.2.4 server code (its own SQLAlchemy) and compare.
    from tests.compat.venvs import ensure

    python = ensure("reference").python
    created = tmp_path / "reference.db"
    program = (
        "import sys; from sqlalchemy import create_engine; "
        "from opsml.registry.sql.base.sql_schema import Base; "
        "Base.metadata.create_all(create_engine(f'sqlite:///{sys.argv[1]}'))"
    )
    subprocess.run([str(python), "-c", program, str(created)], check=True, timeout=300)
    seeded = tmp_path / "fixture.db"
    _seed_reference_database(f"sqlite:///{seeded}")
    assert _columns(f"sqlite:///{created}") == _columns(f"sqlite:///{seeded}")


@pytest.mark.parametrize(
    ("registry", "dropped"),
    [("data", "tags"), ("model", "tags"), ("run", "datacard_uids"), ("run", "artifact_uris")],
)
def test_cards_without_optional_json_fields_are_stored(
    client: TestClient, registry: str, dropped: str
) -> None:
    from tests.app.helpers import card_record

    record = card_record(f"no-{dropped}", "repo", "1.0.0")
    record.pop(dropped, None)
    response = client.post("/opsml/cards/create", json={"card": record, "registry_type": registry})
    assert response.status_code == 200, response.text
    listed = client.post(
        "/opsml/cards/list", json={"registry_type": registry, "uid": record["uid"]}
    ).json()["cards"]
    assert [card["uid"] for card in listed] == [record["uid"]]


def test_a_database_created_with_not_null_json_columns_is_repaired_in_place(
    empty_database_url: str, tmp_path: Path
) -> None:
    # What this server created under SQLAlchemy 2.1 before the fix: the reference tables with
    # `tags` and the JSON link columns NOT NULL, at our revision 0001.
    drifted = REFERENCE_DDL
    for column in ("tags", "datacard_uids", "modelcard_uids", "runcard_uids", "artifact_uris"):
        drifted = drifted.replace(f"\t{column} JSON, ", f"\t{column} JSON NOT NULL, ")
    assert drifted.count("NOT NULL") > REFERENCE_DDL.count("NOT NULL") + 6
    if not empty_database_url.startswith("sqlite"):
        drifted = _postgres_ddl(drifted)
    engine = create_engine(empty_database_url)
    with engine.begin() as connection:
        for statement in drifted.split(";"):
            if "CREATE" in statement:
                connection.exec_driver_sql(statement)
        for table, row in REFERENCE_ROWS:
            columns, values = ", ".join(row), ", ".join(f":{key}" for key in row)
            connection.execute(text(f'INSERT INTO "{table}" ({columns}) VALUES ({values})'), row)
        VersionClaim.__table__.create(connection)
        connection.execute(text(f"CREATE TABLE {VERSION_TABLE} (version_num VARCHAR(32))"))
        connection.execute(text(f"INSERT INTO {VERSION_TABLE} VALUES ('0001')"))
    engine.dispose()
    settings = Settings(
        OPSML_TRACKING_URI=empty_database_url, OPSML_STORAGE_URI=storage_dir(tmp_path / "s")
    )
    engine = build_engine(settings)
    assert run_migrations(engine) == SCHEMA_HEAD
    with engine.connect() as connection:
        for table, row in REFERENCE_ROWS:
            key = "project_id" if table == "OPSML_PROJECT_REGISTRY" else "uid"
            stored = connection.execute(
                text(f'SELECT count(*) FROM "{table}" WHERE {key} = :k'), {"k": row[key]}
            ).scalar()
            assert stored == 1, table
    engine.dispose()
    with fresh_postgres_database("opsml_ref_ddl") as reference_pg:
        reference = reference_pg
        if empty_database_url.startswith("sqlite"):
            reference = f"sqlite:///{tmp_path / 'reference.db'}"
        _seed_reference_database(reference)
        assert _columns(empty_database_url) == _columns(reference)
    from tests.app.helpers import card_record

    record = card_record("after-repair", "repo", "1.0.0")
    del record["tags"]
    with TestClient(create_app(settings, login=False)) as client:
        created = client.post("/opsml/cards/create", json={"card": record, "registry_type": "run"})
        assert created.status_code == 200, created.text
