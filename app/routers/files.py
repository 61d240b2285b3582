"""Artifact routes: /opsml/files/*. Paths are `opsml-root:/...`, confined by the store."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from app.auth import ProdTokenDep
from app.deps import SettingsDep, StoreDep
from app.errors import InvalidRequestError
from app.schemas import FileDeleteResponse, FileExistsResponse, FileListResponse, UploadResponse
from app.storage.upload import receive_upload

router = APIRouter(prefix="/opsml/files", tags=["files"])

PathQuery = Annotated[str, Query(max_length=1024, description="opsml-root:/<TABLE>/<repo>/...")]
ERR_NO_WRITE_PATH = "Upload needs a 'write_path' header naming the opsml-root:/ destination"


@router.post("/upload", dependencies=[ProdTokenDep])
async def upload(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    write_path: Annotated[str | None, Header(alias="write_path", convert_underscores=False)] = None,
) -> UploadResponse:
    if not write_path:
        raise InvalidRequestError(ERR_NO_WRITE_PATH)
    writer = store.writer(write_path)  # validates the path before any byte is read
    await receive_upload(request, writer, settings.max_upload_bytes)
    return UploadResponse(storage_uri=write_path)


@router.get("/download")
def download(path: PathQuery, store: StoreDep) -> StreamingResponse:
    chunks, size = store.stream(path)
    headers = {"content-length": str(size)} if size is not None else {}
    return StreamingResponse(chunks, media_type="application/octet-stream", headers=headers)


@router.get("/list")
def list_files(path: PathQuery, store: StoreDep) -> FileListResponse:
    return FileListResponse(files=store.list_files(path))


@router.get("/exists")
def exists(path: PathQuery, store: StoreDep) -> FileExistsResponse:
    return FileExistsResponse(exists=store.exists(path))


@router.get("/delete", dependencies=[ProdTokenDep])
def delete(path: PathQuery, store: StoreDep) -> FileDeleteResponse:
    store.delete(path)
    return FileDeleteResponse(deleted=True)
