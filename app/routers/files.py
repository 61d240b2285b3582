"""Artifact routes: /opsml/files/*. Paths are `opsml-root:/...`, confined by the store."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import WithJsonSchema
from starlette.concurrency import run_in_threadpool

from app.deps import SettingsDep, StoreDep
from app.errors import AuthError, InvalidRequestError
from app.openapi import (
    CLIENT_PATH_SCHEMA,
    DOWNLOAD_RESPONSES,
    FILE_PATH_SCHEMA,
    UPLOAD_OPENAPI,
)
from app.public_url import public_base_url
from app.schemas import (
    FileDeleteResponse,
    FileExistsResponse,
    FileListResponse,
    PresignResponse,
    UploadResponse,
)
from app.storage.download import open_download
from app.storage.paths import OPSML_ROOT
from app.storage.presign import MAX_EXPIRES_S, Method, presign, verify_signed_request
from app.storage.store import ArtifactStore
from app.storage.upload import receive_raw, receive_upload

router = APIRouter(prefix="/opsml/files", tags=["files"])

# Documented with the full pattern; checked by app.storage.paths, whose 400s say what is wrong.
PathQuery = Annotated[str, Query(max_length=1024), WithJsonSchema(CLIENT_PATH_SCHEMA)]
FilePathQuery = Annotated[str, Query(max_length=1024), WithJsonSchema(FILE_PATH_SCHEMA)]
ERR_WRONG_VERB = "This URL was signed for {method}, not {verb}"
ERR_NO_WRITE_PATH = "Upload needs a 'write_path' header naming the opsml-root:/ destination"


@router.post("/upload", openapi_extra=UPLOAD_OPENAPI)
async def upload(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    write_path: Annotated[
        str | None,
        Header(alias="write_path", convert_underscores=False, include_in_schema=False),
    ] = None,
) -> UploadResponse:
    if not write_path:
        raise InvalidRequestError(ERR_NO_WRITE_PATH)
    writer = store.writer(write_path)  # validates the path before any byte is read
    await receive_upload(request, writer, settings.max_upload_bytes)
    return UploadResponse(storage_uri=write_path)


@router.get("/download", response_class=StreamingResponse, responses=DOWNLOAD_RESPONSES)
async def download(path: PathQuery, store: StoreDep) -> StreamingResponse:
    opened = await open_download(store, path)
    headers = {"content-length": str(opened.size)} if opened.size is not None else {}
    return StreamingResponse(opened.chunks, media_type="application/octet-stream", headers=headers)


@router.head("/download", responses=DOWNLOAD_RESPONSES)
def download_head(path: PathQuery, store: StoreDep) -> Response:
    """The download's headers without its body (size checks, link checkers, `curl -I`)."""
    return _head(store, path)


def _head(store: ArtifactStore, client_path: str) -> Response:
    size = store.file_size(client_path)
    headers = {"content-length": str(size)} if size is not None else {}
    return Response(media_type="application/octet-stream", headers=headers)


@router.get("/list")
def list_files(path: PathQuery, store: StoreDep) -> FileListResponse:
    return FileListResponse(files=store.list_files(path))


@router.get("/exists")
def exists(path: PathQuery, store: StoreDep) -> FileExistsResponse:
    return FileExistsResponse(exists=store.exists(path))


@router.get("/delete")
def delete(path: PathQuery, store: StoreDep) -> FileDeleteResponse:
    store.delete(path)
    return FileDeleteResponse(deleted=True)


@router.get("/presign")
@router.get("/presigned", include_in_schema=False)  # what opsml-cli 0.7 asks for
def presign_url(
    request: Request,
    path: FilePathQuery,
    store: StoreDep,
    settings: SettingsDep,
    method: Method = "GET",
    expires: Annotated[int, Query(ge=1, le=MAX_EXPIRES_S)] = 900,
) -> PresignResponse:
    """A time-limited URL to read (GET) or write (PUT) one artifact without credentials;
    a PUT URL needs the production token (app.route_access)."""
    base_url = public_base_url(request, settings.external_url) if store.location.is_local else ""
    url = presign(store.location, store.storage_path(path), method, expires, base_url=base_url)
    return PresignResponse(url=url, method=method, expires_in=expires)


SignedQuery = Annotated[str, Query(max_length=1024)]


@router.get("/signed", include_in_schema=False)
async def signed_download(
    path: SignedQuery,
    expires: SignedQuery,
    method: SignedQuery,
    signature: SignedQuery,
    store: StoreDep,
) -> StreamingResponse:
    """Serves local-storage pre-signed GET URLs (cloud URLs go straight to the bucket)."""
    _verify(store, path, "GET", method, expires, signature)
    return await download(f"{OPSML_ROOT}/{path}", store)


@router.head("/signed", include_in_schema=False)
def signed_head(
    path: SignedQuery,
    expires: SignedQuery,
    method: SignedQuery,
    signature: SignedQuery,
    store: StoreDep,
) -> Response:
    """HEAD of a pre-signed GET URL: what the GET would send, without the body."""
    _verify(store, path, "GET", method, expires, signature)
    return _head(store, f"{OPSML_ROOT}/{path}")


@router.put("/signed", include_in_schema=False)
async def signed_upload(
    request: Request,
    path: SignedQuery,
    expires: SignedQuery,
    method: SignedQuery,
    signature: SignedQuery,
    store: StoreDep,
    settings: SettingsDep,
) -> UploadResponse:
    """Accepts the raw body of a local-storage pre-signed PUT, once: the URL only creates."""
    await run_in_threadpool(_verify, store, path, "PUT", method, expires, signature)
    client_path = f"{OPSML_ROOT}/{path}"
    writer = await run_in_threadpool(store.writer, client_path, replace=False)
    await receive_raw(request, writer, settings.max_upload_bytes)
    return UploadResponse(storage_uri=client_path)


def _verify(
    store: ArtifactStore, path: str, verb: str, method: str, expires: str, signature: str
) -> None:
    if method.upper() != verb:
        raise AuthError(ERR_WRONG_VERB.format(verb=verb, method=method[:8]), forbidden=True)
    verify_signed_request(store.location, path, verb, expires, signature)
