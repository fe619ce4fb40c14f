"""Running a study from the server: sent as YAML, validated as the command line does, computed in the background.

``POST /api/v1/studies`` (the study's YAML as the body) and the page ``/run`` (a form: the YAML
edited in place or uploaded) take a study from someone whose role may run studies. The text is
validated by :func:`training_roi.study.study_from_text` — the rules and the messages of
``training-roi report`` — so a study refused here is refused there in the same words; a study
sent to the server has no folder, so it may name no file (``holdout_file``) for the server to
read. A valid study is queued as the next version of its hash and answered on the warehouse's
current snapshot by :class:`Runner`; the run's status and progress are in the store for the API
and the study's page to show, and once done its result.json and the answer's files.

One worker thread computes the runs, one at a time in the order they came: an evaluation keeps
both cores of a small server busy (DuckDB's scans, the bootstrap), so a second run at once would
finish no sooner and would slow every page the server answers meanwhile.
"""

from __future__ import annotations

import logging
import queue
import tempfile
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel

from training_roi._format import percent, plural
from training_roi.errors import TrainingRoiError, WarehouseError
from training_roi.files import MAX_YAML_BYTES
from training_roi.study import Study, starter_study, study_from_text
from training_roi.web.access import Viewer, client_of, require, snapshots_of, store_of
from training_roi.web.auth import csrf_ok
from training_roi.web.pages import render
from training_roi.web.results import FILES
from training_roi.web.snapshot import Snapshots
from training_roi.web.store import Status, Store, StoredResult

__all__ = ["STOPPED", "YAML_TYPES", "QueuedRun", "Run", "Runner", "api_router", "page_router"]

log = logging.getLogger(__name__)

api_router = APIRouter(prefix="/api/v1")
page_router = APIRouter(include_in_schema=False)

STOPPED = "the server stopped during the run: run the study again"
"""The error of a run that was queued or running when the server stopped."""

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain")
"""The media types a study's YAML may be sent with."""

SOURCE = "study.yaml"
"""What messages call a study sent without a file name (the API's body, the page's text box)."""

Reader = Annotated[Viewer, require("read_aggregates", api=True)]
Analyst = Annotated[Viewer, require("run_studies", api=True)]
AnalystPage = Annotated[Viewer, require("run_studies", api=False)]


class _Stopped(Exception):
    """The server is stopping: the run gives up at its next step."""


@dataclass(frozen=True)
class _Job:
    study_hash: str
    version: int
    study: Study


class Runner:
    """Computes the queued runs of a store, one at a time, on a worker thread of its own.

    The thread starts with the first run. When the server stops (:meth:`stop`), the runs still
    queued or running are marked ``failed`` (:data:`STOPPED`) at once, the running one gives up at
    its next step and writes nothing more; a run is stored ``done`` with its result and files in
    one transaction, so it is never left half-written. When the server starts (:meth:`start`), runs
    a stopped or killed server left ``queued`` or ``running`` are marked ``failed`` the same way
    rather than run again: the warehouse may have changed since, and whoever ran the study decides
    whether to run it on today's data.
    """

    def __init__(self, store: Store, snapshots: Snapshots) -> None:
        self.store, self.snapshots = store, snapshots
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._running: _Job | None = None
        self._stopping = threading.Event()
        self.starters: dict[Path, tuple[str, str]] = {}
        """The starter study offered on the run page, by the snapshot it was written from (the current one only)."""

    def start(self) -> list[StoredResult]:
        """Mark the runs a previous server left unfinished as failed; those runs."""
        return self.store.fail_unfinished(STOPPED)

    def submit(self, study: Study, text: str, run_by: str | None) -> StoredResult:
        """Queue a run of ``study`` (its YAML ``text``) as the next version of its hash."""
        with self._lock:
            if self._stopping.is_set():
                raise HTTPException(status_code=503, detail="the server is stopping: send the study again once it "
                                                            "has restarted")
            ahead = self._jobs.qsize() + (self._running is not None)
            run = self.store.queue_result(study.hash, study.name, text, run_by)
            run = self.store.update_result(run.study_hash, run.version, progress="queued" if not ahead else
                                           f"queued behind {plural(ahead, 'other run')}")
            self._jobs.put(_Job(run.study_hash, run.version, study))
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="training-roi-runs", daemon=True)
                self._thread.start()
        return run

    def stop(self) -> None:
        """Stop taking runs; mark every queued or running run failed (:data:`STOPPED`)."""
        with self._lock:
            self._stopping.set()
            self._jobs.put(None)
        self.store.fail_unfinished(STOPPED)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            if self._stopping.is_set():
                return
            self._running = job
            try:
                self._run(job)
            except Exception:  # the store itself failed: the thread must keep serving the next runs
                log.exception("study %s version %s: the run's status could not be stored", job.study_hash,
                              job.version)
            finally:
                self._running = None

    def _progress(self, job: _Job, what: str, fraction: float) -> None:
        if self._stopping.is_set():
            raise _Stopped
        self.store.update_result(job.study_hash, job.version,
                                 progress=f"{what} ({percent(Decimal(str(round(fraction * 100, 1))))} done)")

    def _run(self, job: _Job) -> None:
        from training_roi.evaluation import evaluate
        from training_roi.present.answer import write_answer

        started = time.monotonic()
        self.store.update_result(job.study_hash, job.version, status="running", progress="starting")
        try:
            with self.snapshots.held() as snapshot:
                answer = evaluate(snapshot.backend(), job.study,
                                  progress=lambda what, fraction: self._progress(job, what, fraction))
            self._progress(job, "writing the answer's files", 0.97)
            with tempfile.TemporaryDirectory(prefix="training-roi-run-") as folder:
                written = write_answer(answer, Path(folder))
                document = written["result"].read_text(encoding="utf-8")
                files = {name: (Path(folder) / name).read_bytes() for name in FILES if (Path(folder) / name).is_file()}
        except _Stopped:
            return
        except TrainingRoiError as exc:
            self._fail(job, str(exc))
            return
        except Exception as exc:
            if self._stopping.is_set():  # its snapshot closed under it: the stop already said so
                return
            log.exception("study %s version %s failed", job.study_hash, job.version)
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            what = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
            self._fail(job, f"an unexpected error stopped the run ({what}); the server's log has the details")
            return
        try:
            self.store.finish_result(job.study_hash, job.version, document, files,
                                     progress=f"done in {time.monotonic() - started:,.1f} seconds")
        except KeyError:  # marked failed meanwhile: the server is stopping
            return

    def _fail(self, job: _Job, message: str) -> None:
        if not self._stopping.is_set():
            self.store.update_result(job.study_hash, job.version, status="failed", error=message)


def runner_of(request: Request) -> Runner:
    """The server's runner."""
    runner: Runner = request.app.state.runner
    return runner


class QueuedRun(BaseModel):
    """A run queued: its study hash and version, and where to follow it."""

    study_hash: str
    version: int
    name: str
    status: str
    progress: str | None
    url: str
    """The run in the API (``GET``): its status and progress, then its result."""
    page: str
    """The study's page for this version."""


class Problem(BaseModel):
    """Why a study was not run, in the words ``training-roi report`` uses for the same file."""

    detail: str


def _queued(run: StoredResult) -> QueuedRun:
    return QueuedRun(study_hash=run.study_hash, version=run.version, name=run.study_name, status=run.status,
                     progress=run.progress, url=f"/api/v1/studies/{run.study_hash}/versions/{run.version}",
                     page=f"/studies/{run.study_hash}?version={run.version}")


def _submit(request: Request, viewer: Viewer, text: str | bytes, source: str) -> StoredResult:
    """Validate a study's text (raising TrainingRoiError with the command line's message) and queue its run."""
    store = store_of(request)
    try:
        study = study_from_text(text, source=source)
    except TrainingRoiError as exc:
        store.audit("run_study_refused", user=viewer.user.name, target=source, detail=str(exc)[:500],
                    client=client_of(request))
        raise
    body = text.decode("utf-8") if isinstance(text, bytes) else text
    run = runner_of(request).submit(study, body, viewer.user.name)
    store.audit("run_study", user=viewer.user.name, target=f"study {run.study_hash} v{run.version}",
                detail=study.name, client=client_of(request))
    return run


async def _body(request: Request) -> bytes:
    """The request's body, refused (413) beyond the size a study may have."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_YAML_BYTES:
            raise HTTPException(status_code=413, detail=f"the study is larger than the {MAX_YAML_BYTES:,} bytes "
                                                        "a study may have")
        chunks.append(chunk)
    return b"".join(chunks)


_YAML_BODY = {"schema": {"type": "string", "description": "the study's YAML, as `training-roi report` reads it"},
              "example": "name: Sales Excellence 2024\nprogram:\n  activities: [\"https://lms.example.com/xapi/"
                         "activities/course/sales-excellence\"]\n"}


@api_router.post(
    "/studies", status_code=202, response_model=QueuedRun, tags=["studies"],
    openapi_extra={"requestBody": {"required": True, "content": dict.fromkeys(YAML_TYPES, _YAML_BODY)}},
    responses={413: {"model": Problem, "description": "the body is larger than a study may be (1 MiB)"},
               415: {"model": Problem, "description": "the body is not sent as YAML"},
               422: {"model": Problem, "description": "the study is invalid: the message `training-roi report` "
                                                      "prints for the same file named study.yaml"},
               503: {"model": Problem, "description": "the server is stopping"}})
async def run_study(request: Request, viewer: Analyst) -> Response:
    """Run a study: its YAML as the body (``Content-Type: application/yaml`` or ``text/plain``).

    Validated as ``training-roi report`` validates a study file (a study sent here names no file);
    a valid study is queued as the next version of its hash and computed in the background on the
    warehouse's current snapshot, one run at a time. The answer (202) says where to follow it:
    ``url`` gives the run's status and progress, then its result.json.
    """
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind not in YAML_TYPES:
        raise HTTPException(status_code=415, detail=f"send the study's YAML as the body with Content-Type "
                                                    f"application/yaml or text/plain (got {kind or 'none'})")
    text = await _body(request)
    try:
        run = await run_in_threadpool(_submit, request, viewer, text, SOURCE)
    except TrainingRoiError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=422)
    queued = _queued(run)
    return JSONResponse(queued.model_dump(), status_code=202, headers={"Location": queued.url})


class Run(BaseModel):
    """A study's latest run: its status, progress or error, who ran it (from analyst up) and when."""

    study_hash: str
    version: int
    name: str
    status: Status
    progress: str | None
    error: str | None
    run_by: str | None
    created: str
    updated: str
    finished: str | None
    url: str


@api_router.get("/studies", response_model=list[Run], tags=["studies"])
def runs(request: Request, viewer: Reader, status: Status | None = None) -> list[Run]:
    """Every study's latest run, newest first; with ``status``, each study's latest run of that status."""
    store = store_of(request)
    store.audit("view", user=viewer.user.name, target="studies", detail=status, client=client_of(request))
    people = viewer.may("read_people")
    return [Run(study_hash=r.study_hash, version=r.version, name=r.study_name, status=r.status, progress=r.progress,
                error=r.error, run_by=r.run_by if people else None, created=r.created.isoformat(),
                updated=r.updated.isoformat(), finished=r.finished.isoformat() if r.finished else None,
                url=f"/api/v1/studies/{r.study_hash}/versions/{r.version}")
            for r in store.latest_results(status, document=False)]


# -- the page ---------------------------------------------------------------------------------------


def _starter(request: Request) -> tuple[str, str]:
    """The starter study for the warehouse's current snapshot (computed once a snapshot), or why there is none."""
    snapshot = snapshots_of(request).current()
    cache = runner_of(request).starters
    if snapshot.path not in cache:
        try:
            found = (starter_study(snapshot.backend()), "")
        except WarehouseError as exc:
            found = ("", f"no starter study: {exc}")
        cache.clear()
        cache[snapshot.path] = found
    return cache[snapshot.path]


def _form(request: Request, viewer: Viewer, text: str, message: str = "", status: int = 200) -> HTMLResponse:
    under_way = [r for r in store_of(request).latest_results(document=False) if r.status in ("queued", "running")]
    return render(request, "run.html", viewer, status=status, text=text, message=message, under_way=under_way,
                  limit=MAX_YAML_BYTES)


@page_router.get("/run", response_class=HTMLResponse)
def run_page(request: Request, viewer: AnalystPage) -> HTMLResponse:
    """The form: the starter study for this warehouse to edit, or a study file to upload."""
    text, note = _starter(request)
    return _form(request, viewer, text, note)


def _source(upload: UploadFile | None) -> str:
    """What messages call an uploaded study: its file's name (without folders), else study.yaml."""
    name = Path((upload.filename or "") if upload else "").name
    return name[:100] if name and name.isprintable() else SOURCE


@page_router.post("/run")
def run_submit(request: Request, viewer: AnalystPage, csrf: Annotated[str, Form()] = "",
               study: Annotated[str, Form()] = "", file: Annotated[UploadFile | None, File()] = None) -> Response:
    """Validate the study (the uploaded file when one is given, else the text), queue it, go to its page."""
    if not csrf_ok(viewer.session, csrf):
        raise HTTPException(status_code=403, detail="the form's CSRF token does not match the session: load the "
                                                    "page again")
    uploaded = file is not None and bool(file.filename)
    text: str | bytes = file.file.read(MAX_YAML_BYTES + 1) if uploaded and file else study
    source = _source(file) if uploaded else SOURCE
    shown = text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text
    if len(text) > MAX_YAML_BYTES:
        return _form(request, viewer, "", f"study {source}: larger than the {MAX_YAML_BYTES:,} bytes a study may "
                                          "have", status=413)
    try:
        run = _submit(request, viewer, text, source)
    except TrainingRoiError as exc:
        return _form(request, viewer, shown, str(exc), status=422)
    return RedirectResponse(_queued(run).page, status_code=303)
