"""Request and response bodies of the OpsML 2.x protocol (see docs in PROTOCOL.md).

Unknown top-level keys are ignored, so newer clients keep working; card records themselves are
checked strictly against their table in `app.services.records`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.services.semver import VersionType

ShortStr = Annotated[str, StringConstraints(max_length=256)]
RegistryName = Annotated[str, StringConstraints(max_length=64)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RegistryRef(_Request):
    registry_type: RegistryName | None = None
    table_name: RegistryName | None = None


class TableNameResponse(BaseModel):
    table_name: str


class UidExistsRequest(RegistryRef):
    uid: ShortStr


class UidExistsResponse(BaseModel):
    uid_exists: bool


class SuppliedVersion(_Request):
    version: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class VersionRequest(RegistryRef):
    name: ShortStr
    repository: ShortStr
    version: SuppliedVersion | None = None
    version_type: VersionType = VersionType.MINOR
    pre_tag: Annotated[str, StringConstraints(min_length=1, max_length=32)] = "rc"
    build_tag: Annotated[str, StringConstraints(min_length=1, max_length=32)] = "build"


class VersionResponse(BaseModel):
    version: str


class ListCardRequest(RegistryRef):
    name: ShortStr | None = None
    repository: ShortStr | None = None
    version: Annotated[str, StringConstraints(max_length=64)] | None = None
    uid: ShortStr | None = None
    max_date: Annotated[str, StringConstraints(max_length=10)] | None = None
    limit: Annotated[int, Field(ge=0, le=100_000)] | None = None
    tags: dict[ShortStr, Any] | None = Field(default=None, max_length=50)
    ignore_release_candidates: bool = False
    project_id: Any = None  # sent by the client, ignored by the reference and by us
    query_terms: dict[ShortStr, Any] | None = Field(default=None, max_length=50)
    sort_by_timestamp: bool = False


class ListCardResponse(BaseModel):
    cards: list[dict[str, Any]]


class CardRequest(RegistryRef):
    card: dict[str, Any]


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

    run_uid: ShortStr
    name: ShortStr
    # NaN and infinities cannot be written back as JSON: refuse them on the way in.
    value: Annotated[float, Field(allow_inf_nan=False)]
    step: int | None = None
    timestamp: int | None = None


class PutMetricsRequest(_Request):
    metric: Annotated[list[MetricIn], Field(max_length=10_000)]


class GetMetricsRequest(_Request):
    run_uid: ShortStr
    name: Annotated[list[ShortStr], Field(max_length=1000)] | None = None
    names_only: bool = False


class MetricsResponse(BaseModel):
    metric: list[dict[str, Any]] | list[str] | None


class SuccessResponse(BaseModel):
    complete: bool = True


class ModelMetadataRequest(_Request):
    name: ShortStr | None = None
    repository: ShortStr | None = None
    version: Annotated[str, StringConstraints(max_length=64)] | None = None
    uid: ShortStr | None = None
    ignore_release_candidate: bool = False


class RegisterModelRequest(_Request):
    name: ShortStr
    repository: ShortStr
    # major[.minor[.patch]]: the registered folder is named after it, the model is the
    # highest card version under that prefix (as the reference).
    version: Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?(\.[0-9]+)?$")]
    onnx: bool = True
    ignore_release_candidate: bool = True


class ModelMetricsRequest(_Request):
    name: ShortStr | None = None
    repository: ShortStr | None = None
    version: Annotated[str, StringConstraints(max_length=64)] | None = None
    uid: ShortStr | None = None


class ModelMetricsResponse(BaseModel):
    metrics: dict[str, list[dict[str, Any]]]


class CompareMetricsRequest(_Request):
    metric_name: Annotated[list[ShortStr], Field(min_length=1, max_length=100)]
    lower_is_better: bool | Annotated[list[bool], Field(min_length=1, max_length=100)]
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
