"""Card registry operations: versions, list, create, update, delete."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache, lru_cache
from typing import Any, cast

from sqlalchemy import (
    Connection,
    CursorResult,
    Engine,
    Select,
    and_,
    bindparam,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import transaction
from app.db.tables import Base, CardRecord, ProjectRecord, VersionClaim
from app.errors import ConflictError, InvalidRequestError, NotFoundError, UnavailableError
from app.services import records, semver, values
from app.services.registries import REGISTRY_TABLES

# An unused `cards/version` answer is held this long, so concurrent registrations of one name
# get distinct versions, then freed for a client that retries after a failed registration.
CLAIM_TTL_US = 10 * 60 * 1_000_000
# Answers never used (names never registered again) are deleted by one sweep of the claims
# table at most this often per process, the first at the first `cards/version` after start:
# the table then holds at most the unused answers of TTL + this interval, and no request
# pays a full-table scan except one per interval.
CLAIM_SWEEP_INTERVAL_S = 10 * 60.0
_CLAIM_ATTEMPTS = 20
DEFAULT_LIST_LIMIT = 20
# Joins one card's versions in one string; SemVer text cannot contain it.
_VERSION_SEPARATOR = ","
_ALL_VERSIONS = "opsml_server_all_versions"

ERR_DUPLICATE_VERSION = (
    "A {registry} card {repository}/{name} version {version} already exists; register a new "
    "version or update the existing card"
)
ERR_DUPLICATE_PROJECT = "A project with project_id {project_id} already exists"
ERR_NO_CARD = "No {registry} card with uid {uid}"
ERR_UNKNOWN_TERM = "Unknown query term '{term}' for {registry} cards; known: {known}"
_IDENTITY = ("name", "repository", "version")
ERR_CARD_VERSION = "Card version '{version}' is not a semantic version (e.g. 1.2.0)"
ERR_TERM_VALUE = "Query term '{term}' must be a string, number, boolean or null"
ERR_TERM_JSON = (
    "Query term '{term}' is a JSON field, which cannot be matched as a whole; filter tags "
    "with 'tags' instead"
)
ERR_TAG_VALUE = "Tag filter '{tag}' must be text or a number"
ERR_MAX_DATE = "max_date must be a date as YYYY-MM-DD"
ERR_VERSION_BUSY = "Could not reserve a version after several attempts; try again"


@dataclass(frozen=True)
class CardQuery:
    uid: str | None = None
    name: str | None = None
    repository: str | None = None
    version: str | None = None
    max_date: str | None = None
    limit: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    query_terms: dict[str, Any] = field(default_factory=dict)
    ignore_release_candidates: bool = False
    sort_by_timestamp: bool = False


def _c(table: Any, attribute: str) -> Any:
    """A table's column by attribute name: the registry tables share these by convention,
    which the type system cannot see through `type[Base]`."""
    return getattr(table, attribute)


def _now_us() -> int:
    return time.time_ns() // 1000


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _version_prefix_filter(column: Any, prefix: str) -> Any:
    """SQL twin of `semver.matches_prefix`: the index narrows, Python has the last word."""
    escaped = _escape_like(prefix)
    return or_(column == prefix, *(column.like(f"{escaped}{sep}%", escape="\\") for sep in ".-+"))


def _max_date_us(max_date: str) -> int:
    try:
        day = datetime.strptime(max_date, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise InvalidRequestError(ERR_MAX_DATE) from None
    return int(day.replace(hour=23, minute=59, second=59, microsecond=999_999).timestamp() * 1e6)


class CardService:
    """Registry operations over one database; safe to share between requests."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        read_engine: Engine,
        app_env: str,
        claim_sweep_interval_s: float = CLAIM_SWEEP_INTERVAL_S,
    ) -> None:
        self._sessions = sessions
        self._sweep_interval_s = claim_sweep_interval_s
        self._next_sweep = 0.0  # monotonic seconds: the first version request sweeps
        self._sweep_lock = threading.Lock()
        # Reads go straight to a connection of the read engine (autocommit on Postgres, see
        # app.db.engine.build_read_engine): no transaction and no Session bookkeeping.
        self._read_engine = read_engine
        self._app_env = app_env

    # -- reads ---------------------------------------------------------------------------
    def uid_exists(self, registry: str, uid: str) -> bool:
        table = REGISTRY_TABLES[registry]
        column = _c(table, "uid")
        with self._read_engine.connect() as connection:
            return connection.scalar(select(func.count()).where(column == uid)) != 0

    def repositories(self, registry: str) -> list[str]:
        table = REGISTRY_TABLES[registry]
        column = _c(table, "repository")
        query = select(column).where(column.is_not(None)).distinct().order_by(column.asc())
        with self._read_engine.connect() as connection:
            return list(connection.scalars(query))

    def names(self, registry: str, repository: str | None) -> list[str]:
        table = REGISTRY_TABLES[registry]
        query = select(_c(table, "name")).where(_c(table, "name").is_not(None))
        if repository:
            query = query.where(_c(table, "repository") == records.clean_name(repository))
        query = query.distinct().order_by(_c(table, "name").asc())
        with self._read_engine.connect() as connection:
            return list(connection.scalars(query))

    def list_cards(self, registry: str, query: CardQuery) -> list[dict[str, Any]]:
        table = REGISTRY_TABLES[registry]
        columns = records.record_columns(table)
        # Core rows labelled with attribute names, not ORM objects: a listing builds no
        # instances it would only turn back into dicts (a third of a request's time).
        with self._read_engine.connect() as connection:
            if query.uid:
                stmt = select(*columns).where(_c(table, "uid") == query.uid).limit(1)
                return [_record(table, row) for row in connection.execute(stmt)]
            prefix, top_only = self._list_prefix(query.version)
            page = self._page_size(query)
            if query.name and page is not None and not query.sort_by_timestamp:
                rows = self._page_of_one_card(connection, table, registry, query, prefix, page)
            else:
                conditions = self._list_conditions(table, registry, query, prefix)
                rows = self._ordered_rows(
                    connection, table, columns, conditions, query, prefix, page
                )
        cards = [_record(table, row) for row in rows]
        if query.ignore_release_candidates:
            cards = [c for c in cards if not _is_prerelease(c.get("version"))]
        if top_only:
            return cards[:1]
        limit = self._effective_limit(query)
        return cards[:limit] if limit is not None else cards

    @staticmethod
    def _effective_limit(query: CardQuery) -> int | None:
        if query.limit is not None:
            return query.limit
        if not (query.name or query.repository):
            return DEFAULT_LIST_LIMIT
        return None

    @classmethod
    def _page_size(cls, query: CardQuery) -> int | None:
        """How many rows the database may stop at (None: all, filtered here afterwards)."""
        limit = cls._effective_limit(query)
        return limit if limit is not None and not query.ignore_release_candidates else None

    @staticmethod
    def _list_prefix(version: str | None) -> tuple[str | None, bool]:
        if not version:
            return None, False
        try:
            return semver.list_search_prefix(version)
        except semver.VersionFormatError as exc:
            raise InvalidRequestError(str(exc)) from None

    @staticmethod
    def _list_conditions(
        table: type[Base], registry: str, query: CardQuery, prefix: str | None
    ) -> list[Any]:
        known = records.field_names(table)
        conditions: list[Any] = []
        if query.name:
            conditions.append(_c(table, "name") == records.clean_name(query.name))
        if query.repository:
            conditions.append(_c(table, "repository") == records.clean_name(query.repository))
        if prefix:
            conditions.append(_version_prefix_filter(_c(table, "version"), prefix))
        if query.max_date:
            conditions.append(_c(table, "timestamp") <= _max_date_us(query.max_date))
        if query.tags:
            if "tags" not in known:
                raise InvalidRequestError(f"{registry} cards have no tags to filter on")
            for key, value in query.tags.items():
                conditions.append(_c(table, "tags")[key].as_string() == _tag_filter(key, value))
        for key, value in query.query_terms.items():
            if key not in known:
                known_list = ", ".join(known)
                raise InvalidRequestError(
                    ERR_UNKNOWN_TERM.format(term=key[:64], registry=registry, known=known_list)
                )
            conditions.append(_term_condition(table, key, value))
        return conditions

    @staticmethod
    def _filters_name_only(query: CardQuery, prefix: str | None) -> bool:
        """Whether `_list_conditions` would filter on name and repository alone, so that the
        prebuilt `_name_lookup` statements apply. A filter added there belongs here too."""
        return not (prefix or query.max_date or query.tags or query.query_terms)

    def _ordered_rows(
        self,
        connection: Connection,
        table: type[Base],
        columns: tuple[Any, ...],
        conditions: list[Any],
        query: CardQuery,
        prefix: str | None,
        page: int | None,
    ) -> list[Any]:
        if query.sort_by_timestamp:
            stmt = select(*columns).where(*conditions).order_by(_c(table, "timestamp").desc())
            rows = [r for r in connection.execute(stmt if page is None else stmt.limit(page))]
            return [r for r in rows if _prefix_ok(r, prefix)]
        # Semver order is computed here, not in SQL: it is the same on every database and
        # right for pre-releases.
        if query.name:
            # All of one card's versions: read whole in one statement.
            rows = list(connection.execute(select(*columns).where(*conditions)))
            return _by_semver([r for r in rows if _prefix_ok(r, prefix)])
        # Possibly many cards: sort their (uid, version) pairs, then read only the page.
        keys = connection.execute(
            select(_c(table, "uid"), _c(table, "version")).where(*conditions)
        ).all()
        ordered = [uid for uid, _ in _by_semver([k for k in keys if _prefix_ok(k, prefix)])]
        if page is not None:
            ordered = ordered[:page]
        if not ordered:
            return []
        stmt = select(*columns).where(_c(table, "uid").in_(ordered))
        rows_by_uid = {row.uid: row for row in connection.execute(stmt)}
        return [rows_by_uid[uid] for uid in ordered if uid in rows_by_uid]

    def _page_of_one_card(
        self,
        connection: Connection,
        table: type[Base],
        registry: str,
        query: CardQuery,
        prefix: str | None,
        page: int,
    ) -> list[Any]:
        """The top `page` versions of one card (the client's usual `limit=1`: its latest).

        One statement reads the `page` newest rows by timestamp and, beside them, all of the
        card's versions joined in one string (one row, not one per version: a card may have
        hundreds, and each row costs the driver more than the database). Versions usually
        grow with time, so the newest rows are usually the highest versions; that guess is
        checked against the joined versions, and only a wrong guess costs a second read.
        """
        if not self._filters_name_only(query, prefix):
            conditions = self._list_conditions(table, registry, query, prefix)
            lookup = _CardLookup.build(table, conditions)
            params: dict[str, Any] = {"page": page}
        else:  # by name (and repository): the hot path, statements built once
            lookup = _name_lookup(table, bool(query.repository))
            params = {"page": page, "name": records.clean_name(query.name)}
            if query.repository:
                params["repository"] = records.clean_name(query.repository)
        newest = connection.execute(lookup.newest, params).all()
        if not newest:
            return []
        wanted = _top_versions(newest[0][-1], prefix, page)  # repeats kept
        guess = _by_semver([row for row in newest if _prefix_ok(row, prefix)])
        if sorted(row.version for row in guess) == sorted(wanted):
            return guess
        stmt = lookup.rows.where(_c(table, "version").in_(set(wanted)))
        return _by_semver(list(connection.execute(stmt, params)))[:page]

    # -- versions ------------------------------------------------------------------------
    def next_version(
        self,
        registry: str,
        name: str,
        repository: str,
        supplied: str | None,
        version_type: semver.VersionType,
        pre_tag: str,
        build_tag: str,
    ) -> str:
        """Answer `cards/version` and hold the answer, so no concurrent caller gets it too."""
        table = REGISTRY_TABLES[registry]
        name, repository = records.clean_name(name) or "", records.clean_name(repository) or ""
        try:
            if supplied is not None:
                supplied = semver.validate_supplied_version(supplied)
            semver.validate_tag(pre_tag, "pre_tag", build=False)
            semver.validate_tag(build_tag, "build_tag", build=True)
        except semver.VersionFormatError as exc:
            raise InvalidRequestError(str(exc)) from None
        prefix = semver.search_prefix(supplied, version_type) if supplied else None
        self._sweep_stale_claims()
        for _ in range(_CLAIM_ATTEMPTS):
            try:
                with transaction(self._sessions) as session:
                    taken = self._taken_versions(session, table, registry, name, repository)
                    if prefix:
                        taken = [v for v in taken if semver.matches_prefix(v, prefix)]
                    version = semver.next_version(taken, supplied, version_type, pre_tag, build_tag)
                    session.add(_claim(registry, name, repository, version, uid=None))
                return version
            except IntegrityError:
                continue  # someone claimed the same version a moment ago: compute again
            except OperationalError as exc:
                if "locked" not in str(exc.orig).lower():
                    raise
        raise UnavailableError(ERR_VERSION_BUSY)

    def _sweep_stale_claims(self) -> None:
        with self._sweep_lock:  # one sweep at a time per process, the others go on
            now = time.monotonic()
            if now < self._next_sweep:
                return
            self._next_sweep = now + self._sweep_interval_s
        try:
            with transaction(self._sessions) as session:
                session.execute(
                    delete(VersionClaim).where(
                        VersionClaim.uid.is_(None),
                        VersionClaim.claimed_at < _now_us() - CLAIM_TTL_US,
                    )
                )
        except OperationalError as exc:
            # SQLite busy with another writer: the next interval sweeps instead.
            if "locked" not in str(exc.orig).lower():
                raise

    @staticmethod
    def _taken_versions(
        session: Session, table: type[Base], registry: str, name: str, repository: str
    ) -> list[str]:
        session.execute(
            delete(VersionClaim).where(
                VersionClaim.registry_type == registry,
                VersionClaim.name == name,
                VersionClaim.repository == repository,
                VersionClaim.uid.is_(None),
                VersionClaim.claimed_at < _now_us() - CLAIM_TTL_US,
            )
        )
        cards = session.scalars(
            select(_c(table, "version")).where(
                _c(table, "name") == name, _c(table, "repository") == repository
            )
        )
        claims = session.scalars(
            select(VersionClaim.version).where(
                VersionClaim.registry_type == registry,
                VersionClaim.name == name,
                VersionClaim.repository == repository,
            )
        )
        return sorted(set(cards) | set(claims))

    # -- writes --------------------------------------------------------------------------
    def create(self, registry: str, card: dict[str, Any]) -> None:
        table = REGISTRY_TABLES[registry]
        record = self._prepare(table, registry, card)
        try:
            with transaction(self._sessions) as session:
                if issubclass(table, CardRecord):
                    self._take_version(session, table, registry, record)
                session.add(table(**record))
                session.flush()
        except IntegrityError:
            raise self._conflict(registry, record) from None

    def _prepare(self, table: type[Base], registry: str, card: dict[str, Any]) -> dict[str, Any]:
        record = records.validate_record(table, dict(card), registry)
        if issubclass(table, ProjectRecord):
            # Clients before 2.2 blank a ProjectCard's repository (their validator sets it to
            # ""): the reference stores that, and so do we.
            records.require(record, "project_id", "name", "version")
            record.setdefault("repository", "")
        else:
            records.require(record, "uid", "name", "repository", "version")
            record.setdefault("date", date.today().isoformat())
            record.setdefault("app_env", self._app_env)
            if record.get("timestamp") is None:
                record["timestamp"] = _now_us()
        record["name"] = records.clean_name(record["name"])
        record["repository"] = records.clean_name(record["repository"])
        self._check_identity(table, record)
        records.require_stored(table, record)
        return record

    def _take_version(
        self, session: Session, table: type[CardRecord], registry: str, record: dict[str, Any]
    ) -> None:
        name, repository, version, uid = (
            record["name"],
            record["repository"],
            record["version"],
            record["uid"],
        )
        duplicate = session.scalar(
            select(_c(table, "uid"))
            .where(
                _c(table, "name") == name,
                _c(table, "repository") == repository,
                _c(table, "version") == version,
                _c(table, "uid") != uid,
            )
            .limit(1)
        )
        if duplicate is not None:
            raise self._conflict(registry, record)
        key = and_(
            VersionClaim.registry_type == registry,
            VersionClaim.name == name,
            VersionClaim.repository == repository,
            VersionClaim.version == version,
        )
        claimed = session.execute(
            update(VersionClaim).where(key, VersionClaim.uid.is_(None)).values(uid=uid)
        )
        if cast(CursorResult[Any], claimed).rowcount:
            return
        holder = session.scalar(select(VersionClaim.uid).where(key))
        if holder is None:
            session.add(_claim(registry, name, repository, version, uid=uid))
            session.flush()
        elif holder != uid:
            raise self._conflict(registry, record)

    @staticmethod
    def _conflict(registry: str, record: dict[str, Any]) -> ConflictError:
        if registry == "project":
            return ConflictError(ERR_DUPLICATE_PROJECT.format(project_id=record.get("project_id")))
        return ConflictError(
            ERR_DUPLICATE_VERSION.format(
                registry=registry,
                name=record.get("name"),
                repository=record.get("repository"),
                version=record.get("version"),
            )
        )

    def update(self, registry: str, card: dict[str, Any]) -> None:
        """Change the card with `card.uid`, keeping every rule a create keeps: a valid name,
        repository and version, and no (name, repository, version) twice. The client sends
        the whole record; fields left out keep their stored value."""
        table = REGISTRY_TABLES[registry]
        changes = records.validate_record(table, dict(card), registry)
        records.require(changes, "uid")
        uid = changes.pop("uid")
        for key in ("name", "repository"):
            if key in changes:
                changes[key] = records.clean_name(changes[key])
        self._check_identity(table, changes)
        for key in records.not_null_fields(table):
            if key in changes and changes[key] is None:
                raise InvalidRequestError(records.ERR_REQUIRED.format(field=key))
        identity = ("name", "repository", "version")
        try:
            with transaction(self._sessions) as session:
                stored = session.execute(
                    select(*(_c(table, key) for key in identity))
                    .where(_c(table, "uid") == uid)
                    .limit(1)
                    .with_for_update()
                ).first()
                if stored is None:
                    raise NotFoundError(ERR_NO_CARD.format(registry=registry, uid=uid))
                old = dict(zip(identity, stored, strict=True))
                new = {key: changes.get(key, old[key]) for key in identity}
                if issubclass(table, CardRecord) and new != old:
                    self._take_version(session, table, registry, {**new, "uid": uid})
                    # The old version is free again for a new card.
                    session.execute(
                        delete(VersionClaim).where(
                            VersionClaim.registry_type == registry,
                            VersionClaim.name == old["name"],
                            VersionClaim.repository == old["repository"],
                            VersionClaim.version == old["version"],
                            VersionClaim.uid == uid,
                        )
                    )
                if changes:
                    session.execute(update(table).where(_c(table, "uid") == uid).values(**changes))
        except IntegrityError:
            raise self._conflict(registry, {**changes, "uid": uid}) from None

    @staticmethod
    def _check_identity(table: type[Base], record: dict[str, Any]) -> None:
        """Name, repository and version, where the record has them, as a create needs them.

        A ProjectCard's repository may be blank: clients before 2.2 send it so, and the
        reference stores it."""
        keys = ("name", "version") if issubclass(table, ProjectRecord) else _IDENTITY
        for key in keys:
            if key in record and record[key] in (None, ""):
                raise InvalidRequestError(records.ERR_REQUIRED.format(field=key))
        version = record.get("version")
        if (
            issubclass(table, CardRecord)
            and version is not None
            and semver.SemVer.try_parse(version) is None
        ):
            raise InvalidRequestError(ERR_CARD_VERSION.format(version=version))

    def delete(self, registry: str, uid: str) -> bool:
        table = REGISTRY_TABLES[registry]
        with transaction(self._sessions) as session:
            session.execute(delete(table).where(_c(table, "uid") == uid))
            session.execute(
                delete(VersionClaim).where(
                    VersionClaim.registry_type == registry, VersionClaim.uid == uid
                )
            )
        return not self.uid_exists(registry, uid)


def _claim(
    registry: str, name: str, repository: str, version: str, uid: str | None
) -> VersionClaim:
    return VersionClaim(
        registry_type=registry,
        name=name,
        repository=repository,
        version=version,
        uid=uid,
        claimed_at=_now_us(),
    )


@dataclass(frozen=True)
class _CardLookup:
    """The statements of `CardService._page_of_one_card` for one set of conditions."""

    newest: Select[Any]  # the `page` newest rows, each with all matching versions joined
    rows: Select[Any]  # matching rows, to narrow by version when the guess was wrong

    @classmethod
    def build(cls, table: type[Base], conditions: list[Any]) -> _CardLookup:
        columns = records.record_columns(table)
        all_versions = (
            select(func.aggregate_strings(_c(table, "version"), _VERSION_SEPARATOR))
            .where(*conditions)
            .scalar_subquery()
            .label(_ALL_VERSIONS)
        )
        newest = (
            select(*columns, all_versions)
            .where(*conditions)
            .order_by(_c(table, "timestamp").desc())
            .limit(bindparam("page"))
        )
        return cls(newest=newest, rows=select(*columns).where(*conditions))


@cache
def _name_lookup(table: type[Base], with_repository: bool) -> _CardLookup:
    # Built once, with bound parameters: SQLAlchemy then reuses the statements' cache keys
    # and compiled forms, which cost more than the query itself when rebuilt per request.
    conditions = [_c(table, "name") == bindparam("name")]
    if with_repository:
        conditions.append(_c(table, "repository") == bindparam("repository"))
    return _CardLookup.build(table, conditions)


@lru_cache(maxsize=4096)
def _top_versions(joined: str, prefix: str | None, page: int) -> tuple[str, ...]:
    # Keyed by the card's joined versions, which change only when a version is registered:
    # repeated reads of a card skip the split, the parsing and the sort.
    known = [v for v in joined.split(_VERSION_SEPARATOR) if _version_ok(v, prefix)]
    return tuple(semver.sort_descending(known)[:page])


def _tag_filter(key: str, value: Any) -> str:
    """The text a tag filter compares with: tags hold text and numbers."""
    if isinstance(value, dict | list) or value is None:
        raise InvalidRequestError(ERR_TAG_VALUE.format(tag=key[:64]))
    values.check_json_text("tags", key)
    text = str(value)
    values.check_json_text("tags", text)
    return text


def _term_condition(table: type[Base], key: str, value: Any) -> Any:
    """`column == value`, for values the column can hold (else a 400, not a database error:
    Postgres refuses to compare a bigint with text, or JSON with anything)."""
    column_type = records.column_type(table, key)
    if key in records.json_fields(table):
        raise InvalidRequestError(ERR_TERM_JSON.format(term=key[:64]))
    if value is None:
        return getattr(table, key).is_(None)
    if isinstance(value, dict | list):
        raise InvalidRequestError(ERR_TERM_VALUE.format(term=key[:64]))
    records.check_value(key, value, column_type)
    return getattr(table, key) == value


def _record(table: type[Base], row: Any) -> dict[str, Any]:
    record = records.row_to_record(table, row)
    record.pop(_ALL_VERSIONS, None)  # the helper column of `_page_of_one_card`
    return record


def _is_prerelease(version: Any) -> bool:
    parsed = semver.SemVer.try_parse(version if isinstance(version, str) else None)
    return parsed is not None and parsed.is_prerelease


def _version_ok(version: str, prefix: str | None) -> bool:
    return prefix is None or semver.matches_prefix(version, prefix)


def _prefix_ok(row: Any, prefix: str | None) -> bool:
    return _version_ok(row.version, prefix)


def _by_semver(items: list[Any]) -> list[Any]:
    """Items with a `.version`, highest version first (ties keep their order)."""
    by_version: dict[str, list[Any]] = {}
    for item in items:
        by_version.setdefault(item.version, []).append(item)
    return [item for v in semver.sort_descending(list(by_version)) for item in by_version[v]]
