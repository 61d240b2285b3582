"""Request and response bodies of the OpsML 2.x protocol (see docs in PROTOCOL.md).

Unknown top-level keys are ignored, so newer clients keep working; card records themselves are
checked strictly against their table in `app.services.records`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
)

from app.openapi import (
    BUILD_TAG_SCHEMA,
    DELETE_CARD_SCHEMA,
    MAX_DATE_SCHEMA,
    MODEL_SELECTOR_REQUIRED,
    ONE_REGISTRY_REQUIRED,
    PRE_TAG_SCHEMA,
    REGISTRY_TYPE_SCHEMA,
    SUPPLIED_VERSION_SCHEMA,
    TABLE_NAME_SCHEMA,
    TAG_MAX_LENGTH,
)
from app.services.semver import VersionType

ERR_NUL = "must not contain a NUL character (the database cannot store one)"


def _no_nul(value: str) -> str:
    # Postgres refuses NUL in text; refusing it here keeps SQLite and Postgres alike.
    if "\x00" in value:
        raise ValueError(ERR_NUL)
    return value


def _text_schema(max_length: int, min_length: int = 0, *, plain: bool = False) -> dict[str, Any]:
    # `plain`: a stored name or uid, where app.services.values also refuses control characters.
    pattern = "^[^\\u0000-\\u001f\\u007f]*$" if plain else "^[^\\u0000]*$"
    schema: dict[str, Any] = {"type": "string", "maxLength": max_length, "pattern": pattern}
    return {**schema, "minLength": min_length} if min_length else schema


# Text that reaches the database: bounded, without NUL. 128 is the name/repository columns.
ShortStr = Annotated[
    str,
    StringConstraints(max_length=256),
    AfterValidator(_no_nul),
    WithJsonSchema(_text_schema(256)),
]
NameStr = Annotated[
    str,
    StringConstraints(max_length=128),
    AfterValidator(_no_nul),
    WithJsonSchema(_text_schema(128)),
]
RequiredNameStr = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128),
    AfterValidator(_no_nul),
    WithJsonSchema(_text_schema(128, min_length=1)),
]
VersionStr = Annotated[
    str, StringConstraints(max_length=64), AfterValidator(_no_nul), WithJsonSchema(_text_schema(64))
]
RegistryType = Annotated[
    str, StringConstraints(max_length=64), WithJsonSchema(REGISTRY_TYPE_SCHEMA)
]
TableName = Annotated[str, StringConstraints(max_length=64), WithJsonSchema(TABLE_NAME_SCHEMA)]
PreTag = Annotated[
    str, StringConstraints(min_length=1, max_length=TAG_MAX_LENGTH), WithJsonSchema(PRE_TAG_SCHEMA)
]
BuildTag = Annotated[
    str,
    StringConstraints(min_length=1, max_length=TAG_MAX_LENGTH),
    WithJsonSchema(BUILD_TAG_SCHEMA),
]

ERR_JSON_NUMBER = "must be a JSON number, not {kind}"


def _json_number(value: Any) -> Any:
    # Pydantic's lax mode would take true/false and "12" for numbers, which the published
    # schema (and the OpsML client) never send; integral floats such as 3.0 stay accepted.
    if isinstance(value, bool | str):
        raise ValueError(ERR_JSON_NUMBER.format(kind=type(value).__name__))
    return value


JsonInt = Annotated[int, BeforeValidator(_json_number)]
BIGINT_BOUND = 2**63 - 1024
JsonFloat = Annotated[float, BeforeValidator(_json_number)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RegistryRef(_Request):
    model_config = ConfigDict(extra="ignore", json_schema_extra=ONE_REGISTRY_REQUIRED)

    registry_type: RegistryType | None = None
    table_name: TableName | None = None


class TableNameResponse(BaseModel):
    table_name: str


class UidExistsRequest(RegistryRef):
    uid: ShortStr


class UidExistsResponse(BaseModel):
    uid_exists: bool


class SuppliedVersion(_Request):
    version: Annotated[
        str, StringConstraints(min_length=1, max_length=64), WithJsonSchema(SUPPLIED_VERSION_SCHEMA)
    ]


class VersionRequest(RegistryRef):
    name: NameStr
    repository: NameStr
    version: SuppliedVersion | None = None
    version_type: VersionType = VersionType.MINOR
    pre_tag: PreTag = "rc"
    build_tag: BuildTag = "build"


class VersionResponse(BaseModel):
    version: str


class ListCardRequest(RegistryRef):
    name: ShortStr | None = None
    repository: ShortStr | None = None
    version: VersionStr | None = None
    uid: ShortStr | None = None
    max_date: Annotated[
        str | None, StringConstraints(max_length=10), WithJsonSchema(MAX_DATE_SCHEMA)
    ] = None
    limit: Annotated[int, Field(ge=0, le=100_000), BeforeValidator(_json_number)] | None = None
    tags: dict[ShortStr, Any] | None = Field(default=None, max_length=50)
    ignore_release_candidates: StrictBool = False
    project_id: Any = None  # sent by the client, ignored by the reference and by us
    query_terms: dict[ShortStr, Any] | None = Field(default=None, max_length=50)
    sort_by_timestamp: StrictBool = False


class ListCardResponse(BaseModel):
    cards: list[dict[str, Any]]


class CardRequest(RegistryRef):
    card: dict[str, Any]


class DeleteCardRequest(RegistryRef):
    card: Annotated[dict[str, Any], WithJsonSchema(DELETE_CARD_SCHEMA)]


class AddCardResponse(BaseModel):
    registered: bool


class UpdateCardResponse(BaseModel):
    updated: bool


class DeleteCardResponse(BaseModel):
    deleted: bool


class RepositoriesResponse(BaseModel):
    repositories: list[str]


class NamesResponse(BaseModel):
    names: list[str]


class ProjectIdResponse(BaseModel):
    project_id: int


class MetricIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The column lengths of OPSML_RUN_METRICS (uid VARCHAR(64), name VARCHAR(128)).
    run_uid: Annotated[
        str,
        StringConstraints(min_length=1, max_length=64),
        AfterValidator(_no_nul),
        WithJsonSchema(_text_schema(64, min_length=1, plain=True)),
    ]
    name: Annotated[
        str,
        StringConstraints(min_length=1, max_length=128),
        AfterValidator(_no_nul),
        WithJsonSchema(_text_schema(128, min_length=1, plain=True)),
    ]
    # NaN and infinities cannot be written back as JSON: refuse them on the way in.
    value: Annotated[JsonFloat, Field(allow_inf_nan=False)]
    # The columns' ranges: INTEGER and BIGINT. The bounds stand before the type check so that
    # they apply to the int itself and reach the OpenAPI as minimum/maximum (placed after a
    # BeforeValidator they were published as unknown "ge"/"le" keys).
    step: (
        Annotated[int, Field(ge=-(2**31) + 1, le=2**31 - 1), BeforeValidator(_json_number)] | None
    ) = None
    # BIGINT, less the top 1,023 values: the OpenAPI carries bounds as doubles, whose spacing
    # near 2**63 is 1,024, so only a bound of that grid means the same to clients and to us.
    timestamp: (
        Annotated[int, Field(ge=-BIGINT_BOUND, le=BIGINT_BOUND), BeforeValidator(_json_number)]
        | None
    ) = None


class PutMetricsRequest(_Request):
    metric: Annotated[list[MetricIn], Field(max_length=10_000)]


class GetMetricsRequest(_Request):
    run_uid: ShortStr
    name: Annotated[list[ShortStr], Field(max_length=1000)] | None = None
    names_only: StrictBool = False


class MetricsResponse(BaseModel):
    metric: list[dict[str, Any]] | list[str] | None


class SuccessResponse(BaseModel):
    complete: bool = True


class ModelMetadataRequest(_Request):
    model_config = ConfigDict(extra="ignore", json_schema_extra=MODEL_SELECTOR_REQUIRED)

    name: ShortStr | None = None
    repository: ShortStr | None = None
    version: VersionStr | None = None
    uid: ShortStr | None = None
    ignore_release_candidate: StrictBool = False


class RegisterModelRequest(_Request):
    name: ShortStr
    repository: ShortStr
    # major[.minor[.patch]]: the registered folder is named after it, the model is the
    # highest card version under that prefix (as the reference).
    version: Annotated[
        str, StringConstraints(max_length=64, pattern=r"^[0-9]+(\.[0-9]+)?(\.[0-9]+)?$")
    ]
    onnx: StrictBool = True
    ignore_release_candidate: StrictBool = True


class ModelMetricsRequest(_Request):
    name: ShortStr | None = None
    repository: ShortStr | None = None
    version: Annotated[str, StringConstraints(max_length=64)] | None = None
    uid: ShortStr | None = None


class ModelMetricsResponse(BaseModel):
    metrics: dict[str, list[dict[str, Any]]]


class CompareMetricsRequest(_Request):
    metric_name: Annotated[list[ShortStr], Field(min_length=1, max_length=100)]
    lower_is_better: StrictBool | Annotated[list[StrictBool], Field(min_length=1, max_length=100)]
    challenger_uid: ShortStr
    champion_uid: Annotated[list[ShortStr], Field(min_length=1, max_length=100)]


class BattleReport(BaseModel):
    champion_name: str
    champion_version: str
    champion_metric: dict[str, Any] | None = None
    challenger_metric: dict[str, Any] | None = None
    challenger_win: bool


class CompareMetricsResponse(BaseModel):
    challenger_name: str
    challenger_version: str
    report: dict[str, list[BattleReport]]


class UploadResponse(BaseModel):
    storage_uri: str


class FileListResponse(BaseModel):
    files: list[str]


class FileExistsResponse(BaseModel):
    exists: bool


class FileDeleteResponse(BaseModel):
    deleted: bool


class HealthCheckResponse(BaseModel):
    is_alive: bool


class PresignResponse(BaseModel):
    url: str
    method: str
    expires_in: int


class ReadinessResponse(BaseModel):
    status: str
    checks: dict[str, str]
