"""The pipelined pg8000 DBAPI on the real Postgres: same answers and errors, one round trip."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError, ProgrammingError

from app.db.engine import build_engine, build_read_engine
from app.db.pg8000_pipelined import PipelinedConnection
from app.settings import Settings


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    engine = build_engine(Settings(OPSML_TRACKING_URI=postgres_url))
    yield engine
    engine.dispose()


class _FlushCounter:
    """Wraps a connection's socket file and counts flushes: one flush per exchange."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        self._sock.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def test_server_engines_use_the_pipelined_connection(postgres_url: str, engine: Engine) -> None:
    read_engine = build_read_engine(Settings(OPSML_TRACKING_URI=postgres_url), engine)
    try:
        for each in (engine, read_engine):
            with each.connect() as connection:
                raw = connection.connection.dbapi_connection
                assert isinstance(raw, PipelinedConnection)
    finally:
        read_engine.dispose()


def test_a_parameterised_statement_is_one_round_trip(engine: Engine) -> None:
    with engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        connection.execute(text("SELECT 1"))  # BEGIN happens here, before we count
        counter = _FlushCounter(raw._sock)  # type: ignore[union-attr]
        raw._sock = counter  # type: ignore[union-attr]
        try:
            value = connection.execute(text("SELECT CAST(:n AS integer) + 1"), {"n": 41}).scalar()
        finally:
            raw._sock = counter._sock  # type: ignore[union-attr]
    assert value == 42
    assert counter.flushes == 1


def test_values_of_every_column_type_come_back_as_pg8000_returns_them(engine: Engine) -> None:
    query = text(
        "SELECT CAST(:i AS bigint) AS i, CAST(:s AS text) AS s, CAST(:f AS float8) AS f, "
        "CAST(:b AS boolean) AS b, CAST(:n AS text) AS n, CAST(:j AS json) AS j, "
        "CAST(:d AS date) AS d, generate_series(1, 3) AS k"
    )
    params = {
        "i": 2**40,
        "s": "héllo 'quoted'",
        "f": 1.5,
        "b": True,
        "n": None,
        "j": '{"a": [1, 2]}',
        "d": dt.date(2026, 11, 28),
    }
    with engine.connect() as connection:
        rows = connection.execute(query, params).all()
    assert [row.k for row in rows] == [1, 2, 3]
    first = rows[0]
    assert (first.i, first.s, first.f, first.b, first.n) == (
        2**40,
        "héllo 'quoted'",
        1.5,
        True,
        None,
    )
    assert first.j == {"a": [1, 2]}
    assert first.d == dt.date(2026, 11, 28)


def test_percent_signs_and_repeated_statements_convert_as_pg8000_does(engine: Engine) -> None:
    query = text("SELECT :a || '%' || '%%s' AS v, CAST(:b AS int) AS b")
    with engine.connect() as connection:
        answers = [connection.execute(query, {"a": f"x{i}", "b": i}).one() for i in range(3)]
    assert [tuple(a) for a in answers] == [(f"x{i}%%%s", i) for i in range(3)]


def test_errors_keep_their_class_and_the_connection_recovers(engine: Engine) -> None:
    with engine.connect() as connection:
        with pytest.raises(ProgrammingError, match="42P01"):
            connection.execute(text("SELECT * FROM no_such_table WHERE a = :a"), {"a": 1})
        connection.rollback()
        assert connection.execute(text("SELECT CAST(:a AS int)"), {"a": 7}).scalar() == 7


def test_writes_report_rowcounts_and_constraint_violations(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("CREATE TEMP TABLE pipelined_t (k int PRIMARY KEY, v text)"))
        inserted = connection.execute(
            text("INSERT INTO pipelined_t VALUES (:k, :v)"),
            [{"k": 1, "v": "a"}, {"k": 2, "v": "b"}],
        )
        assert inserted.rowcount == 2
        updated = connection.execute(text("UPDATE pipelined_t SET v = :v"), {"v": "c"})
        assert updated.rowcount == 2
        with pytest.raises(IntegrityError, match="23505"), connection.begin_nested():
            connection.execute(text("INSERT INTO pipelined_t VALUES (:k, :v)"), {"k": 1, "v": "x"})
        assert connection.execute(text("SELECT count(*) FROM pipelined_t")).scalar() == 2
