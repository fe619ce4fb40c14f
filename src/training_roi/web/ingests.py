"""Loading data from the server: an export folder sent as a zip archive, by an admin, from the page or the API.

``POST /api/v1/ingests`` (the archive as the body) and the page ``/admin/ingest`` (an upload form)
take an archive from someone whose role has the ``ingest`` permission (an admin). It is received
within the size limit, checked and unpacked by :mod:`training_roi.web.archive` — a refusal is
answered at once with the reason, and nothing is written — then queued for the loader
(:mod:`training_roi.web.loader`), which runs ``training-roi ingest`` on it. ``GET /api/v1/ingests``
and the page list the ingests with their status, progress and counts; the page reloads itself every
2 seconds while one is queued or running. Every ingest is a line of the audit log (``ingest``: who,
which archive, then its outcome); a refused archive is an ``ingest_refused`` line with the reason.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect

from training_roi._format import plural
from training_roi.web import ingest_records as records
from training_roi.web.access import Viewer, client_of, require, store_of
from training_roi.web.admin import Limit, Offset, Refusal, paged
from training_roi.web.archive import MIB, ArchiveError, Limits, Unpacked, receive, unpack
from training_roi.web.auth import csrf_ok
from training_roi.web.ingest_records import IngestRecord
from training_roi.web.loader import Loader
from training_roi.web.pages import render
from training_roi.web.store import Status

__all__ = ["ZIP_TYPES", "api_router", "page_router"]

api_router = APIRouter(prefix="/api/v1", tags=["ingests"])
page_router = APIRouter(include_in_schema=False)

ZIP_TYPES = ("application/zip", "application/x-zip-compressed")
"""The media types an archive may be sent with."""

DEFAULT_NAME = "export.zip"
"""What an archive sent without a name is called in the records and messages."""

PAGE_ROWS = 50
"""Ingests the page lists (the newest; the API pages through every one)."""

Loading = Annotated[Viewer, require("ingest", api=True)]
LoadingPage = Annotated[Viewer, require("ingest", api=False)]
IngestId = Annotated[int, Path(ge=1, le=2**31 - 1, description="an ingest's number")]


def loader_of(request: Request) -> Loader:
    """The server's loader of ingests."""
    loader: Loader = request.app.state.loader
    return loader


def limits_of(request: Request) -> Limits:
    """The limits an archive is held to."""
    limits: Limits = request.app.state.archive_limits
    return limits


class SourceCount(BaseModel):
    """One source of an ingest: its files and rows, as ``training-roi ingest --json`` counts them."""

    source: str
    table: str
    files: int
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    rows_duplicate: int
    status: str = Field(description="ok, or why the source was refused (in part)")


class Ingest(BaseModel):
    """An archive sent to be ingested: its status and progress, then what it loaded, or why it failed."""

    id: int
    file: str
    bytes: int
    status: Status
    progress: str | None
    error: str | None
    sent_by: str | None
    created: str
    updated: str
    finished: str | None
    ok: bool | None = Field(description="every source present was read (the command's exit status 0); null until "
                                        "done")
    rows_read: int | None
    rows_loaded: int | None
    quarantined: int | None = Field(description="rows put in quarantine, each with its reason; null until done")
    duplicates: int | None
    sources: list[SourceCount]
    warnings: list[str] = Field(description="sources refused and rows quarantined, in words")
    notes: list[str] = Field(description="what the ingest noticed without refusing anything (absent columns, …)")
    linked: str | None = Field(description="learner identities linked to the CRM after the load")
    url: str


def _out(record: IngestRecord) -> Ingest:
    done: dict[str, Any] = record.outcome or {}
    return Ingest(id=record.id, file=record.file, bytes=record.bytes, status=record.status, progress=record.progress,
                  error=record.error, sent_by=record.sent_by, created=record.created.isoformat(),
                  updated=record.updated.isoformat(), finished=record.finished.isoformat() if record.finished else None,
                  ok=done.get("ok"), rows_read=done.get("rows_read"), rows_loaded=done.get("rows_loaded"),
                  quarantined=done.get("quarantined"), duplicates=done.get("duplicates"),
                  sources=[SourceCount(**s) for s in done.get("sources", [])], warnings=done.get("warnings", []),
                  notes=done.get("notes", []), linked=done.get("linked"), url=f"/api/v1/ingests/{record.id}")


def _name(given: str | None) -> str:
    """What the records call an archive: the name it was sent with (without folders), else export.zip."""
    name = FilePath((given or "").replace("\\", "/")).name.strip()
    return name[:100] if name and name.isprintable() else DEFAULT_NAME


def _places(request: Request) -> tuple[FilePath, FilePath]:
    """A new archive's file and the folder it unpacks to, in the loader's folder."""
    stem = loader_of(request).folder / f"upload-{secrets.token_hex(8)}"
    return stem.with_suffix(".zip"), stem


def _refuse(request: Request, viewer: Viewer, name: str, error: ArchiveError) -> ArchiveError:
    store_of(request).audit("ingest_refused", user=viewer.user.name, target=name, detail=str(error)[:500],
                            client=client_of(request))
    return error


async def _refused(request: Request, viewer: Viewer, name: str, error: ArchiveError) -> ArchiveError:
    """:func:`_refuse` from a coroutine: the audit line written on a worker thread."""
    return await run_in_threadpool(_refuse, request, viewer, name, error)


def _queue(request: Request, viewer: Viewer, archive: FilePath, folder: FilePath, name: str,
           size: int) -> IngestRecord:
    """Unpack a received archive (refused with an :class:`ArchiveError`) and queue its ingest; the archive goes."""
    loader = loader_of(request)
    try:
        unpacked: Unpacked = unpack(archive, folder, limits_of(request), name)
    except ArchiveError as exc:
        raise _refuse(request, viewer, name, exc) from None
    finally:
        archive.unlink(missing_ok=True)
    try:
        record = loader.submit(unpacked, name, size, viewer.user.name)
    except RuntimeError:
        raise HTTPException(status_code=503, detail="the server is stopping: send the archive again once it has "
                                                    "restarted") from None
    store_of(request).audit("ingest", user=viewer.user.name, target=f"ingest {record.id}",
                            detail=f"{name} ({size:,} bytes, {plural(unpacked.files, 'file')} of "
                                   f"{plural(len(unpacked.sources), 'source')}): queued", client=client_of(request))
    return record


def _unkept(name: str, exc: OSError) -> HTTPException:
    """The answer when the server's disk cannot keep an archive (full, not writable): 503, try again later."""
    return HTTPException(status_code=503, detail=f"the server could not keep {name} on its disk "
                                                 f"({exc.strerror or exc}): send it again later")


def _declared_too_large(request: Request, limits: Limits, slack: int = 0) -> bool:
    length = request.headers.get("content-length", "")
    return length.isdigit() and int(length) > limits.archive_bytes + slack


_ZIP_BODY = {"schema": {"type": "string", "format": "binary",
                        "description": "a zip archive of an export folder: the files `training-roi ingest` reads"}}


@api_router.post(
    "/ingests", status_code=202, response_model=Ingest,
    openapi_extra={"requestBody": {"required": True, "content": dict.fromkeys(ZIP_TYPES, _ZIP_BODY)}},
    responses={403: {"model": Refusal, "description": "the role is not admin"},
               413: {"model": Refusal, "description": "the archive is larger than the server takes "
                                                      "(serve --max-archive-mib; 1,024 MiB unless set)"},
               415: {"model": Refusal, "description": "the body is not sent as a zip archive"},
               422: {"model": Refusal, "description": "the archive is refused: not a zip, a path outside its folder, "
                                                      "a link, a zip bomb, or none of the files ingest reads"},
               503: {"model": Refusal, "description": "the server is stopping, or cannot keep the archive"}})
async def send_ingest(request: Request, viewer: Loading, name: str | None = None) -> Response:
    """Ingest an export folder: a zip archive of it as the body (``Content-Type: application/zip``); admins only.

    The archive is checked and unpacked at once (a refusal says why, and nothing is written); then
    ``training-roi ingest`` loads it into the warehouse in the background, one ingest at a time. The
    answer (202) says where to follow it: ``url`` gives its status, progress, then its counts.
    ``name`` is what the records call the archive (``export.zip`` unless given).
    """
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind not in ZIP_TYPES:
        raise HTTPException(status_code=415, detail=f"send the archive as the body with Content-Type application/zip "
                                                    f"(got {kind or 'none'})")
    file, limits = _name(name), limits_of(request)
    archive, folder = _places(request)
    try:
        if _declared_too_large(request, limits):
            raise await _refused(request, viewer, file, limits.too_large(file))
        with archive.open("wb") as target:
            try:
                size = await receive(request.stream(), target, limits, file)
            except ArchiveError as exc:
                raise await _refused(request, viewer, file, exc) from None
        record = await run_in_threadpool(_queue, request, viewer, archive, folder, file, size)
    except ArchiveError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)
    except OSError as exc:  # the server's disk, not the archive: the sender may try again later
        raise _unkept(file, exc) from None
    except ClientDisconnect:
        return Response(status_code=400)
    finally:
        archive.unlink(missing_ok=True)
    queued = _out(record)
    return JSONResponse(queued.model_dump(), status_code=202, headers={"Location": queued.url})


@api_router.get("/ingests", response_model=list[Ingest], responses={403: {"model": Refusal, "description":
                                                                           "the role is not admin"}})
def list_ingests(request: Request, response: Response, viewer: Loading, offset: Offset = 0,
                 limit: Limit = 100) -> list[Ingest]:
    """The ingests, newest first, a page at a time (``X-Total-Count``, ``Link``); admins only."""
    store = store_of(request)
    page, total = records.ingests(store, offset=offset, limit=limit)
    paged(request, response, total, offset, limit)
    store.audit("view", user=viewer.user.name, target="ingests", client=client_of(request))
    return [_out(r) for r in page]


@api_router.get("/ingests/{ingest_id}", response_model=Ingest, responses={
    403: {"model": Refusal, "description": "the role is not admin"},
    404: {"model": Refusal, "description": "no such ingest"}})
def one_ingest(request: Request, viewer: Loading, ingest_id: IngestId) -> Ingest:
    """One ingest: its status and progress, then its counts per source, warnings and notes, or its error."""
    store = store_of(request)
    found = records.ingest(store, ingest_id)
    if found is None:
        raise HTTPException(status_code=404, detail=f"no ingest {ingest_id}")
    store.audit("view", user=viewer.user.name, target=f"ingest {ingest_id}", client=client_of(request))
    return _out(found)


# -- the page ---------------------------------------------------------------------------------------


def _page(request: Request, viewer: Viewer, message: str = "", status: int = 200) -> HTMLResponse:
    shown, total = records.ingests(store_of(request), limit=PAGE_ROWS)
    return render(request, "admin_ingest.html", viewer, status=status, ingests=shown, total=total, message=message,
                  limit=limits_of(request).archive_bytes, refresh=any(r.status in ("queued", "running") for r in shown))


@page_router.get("/admin/ingest", response_class=HTMLResponse)
def ingest_page(request: Request, viewer: LoadingPage) -> HTMLResponse:
    """The upload form and the ingests with their status, progress and counts."""
    store_of(request).audit("view", user=viewer.user.name, target="ingests", client=client_of(request))
    return _page(request, viewer)


@page_router.post("/admin/ingest", response_class=HTMLResponse)
async def ingest_upload(request: Request, viewer: LoadingPage) -> Response:
    """Take the uploaded archive (with the session's CSRF token), queue its ingest, show the list again."""
    limits = limits_of(request)
    if _declared_too_large(request, limits, slack=64 * 1024):
        refusal = await _refused(request, viewer, DEFAULT_NAME, limits.too_large("the archive"))
        return await run_in_threadpool(_page, request, viewer, str(refusal), refusal.status)
    try:
        form = await request.form(max_files=1, max_fields=4)
    except MultiPartException as exc:
        return await run_in_threadpool(_page, request, viewer, f"the form could not be read: {exc.message}", 400)
    archive, folder = _places(request)
    name = DEFAULT_NAME
    try:
        csrf = form.get("csrf")
        if not isinstance(csrf, str) or not csrf_ok(viewer.session, csrf):
            raise HTTPException(status_code=403, detail="the form's CSRF token does not match the session: load "
                                                        "the page again")
        upload = form.get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            return await run_in_threadpool(_page, request, viewer, "choose the zip archive of an export folder to "
                                                                   "send", 422)
        name = _name(upload.filename)
        with archive.open("wb") as target:
            try:
                size = await receive(_chunks(upload), target, limits, name)
            except ArchiveError as exc:
                raise await _refused(request, viewer, name, exc) from None
        await run_in_threadpool(_queue, request, viewer, archive, folder, name, size)
    except ArchiveError as exc:
        return await run_in_threadpool(_page, request, viewer, str(exc), exc.status)
    except OSError as exc:
        raise _unkept(name, exc) from None
    finally:
        archive.unlink(missing_ok=True)
        await form.close()
    return RedirectResponse("/admin/ingest", status_code=303)


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    """An uploaded file's bytes, a mebibyte at a time."""
    while chunk := await upload.read(MIB):
        yield chunk
