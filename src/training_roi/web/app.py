"""The web application: the API and the pages over one warehouse's snapshots and the server's store.

:func:`create_app` wires them: the store (users, sessions, audit log, results), the snapshots of
the warehouse (:mod:`training_roi.web.snapshot`), results imported from folders ``report``
wrote, the runner of studies sent to the server (:mod:`training_roi.web.runs`), the loader of the
archives admins send to be ingested (:mod:`training_roi.web.loader`), and the security
headers every answer carries (no framing, no sniffing, a content policy that allows nothing from
elsewhere). Interactive API documentation pages are off — they load their scripts from the
internet; the OpenAPI document itself is at ``/api/v1/openapi.json``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from training_roi import __version__
from training_roi.web import admin, api, drill, ingests, pages, runs
from training_roi.web.access import COOKIE, LoginRequired, Viewer
from training_roi.web.archive import Limits
from training_roi.web.auth import session_for
from training_roi.web.loader import Loader
from training_roi.web.memo import warm
from training_roi.web.results import import_results
from training_roi.web.snapshot import Snapshots
from training_roi.web.store import Store

__all__ = ["create_app"]

_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_POLICY = "default-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; form-action 'self'; " \
          "frame-ancestors 'none'; base-uri 'none'"


class SecurityHeaders:
    """Adds the security headers to every answer (a plain ASGI middleware: no task or stream per request)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in _HEADERS.items():
                    headers.setdefault(key, value)
                headers.setdefault("Content-Security-Policy", _POLICY)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(db: Path, store: Store, *, results: list[Path] | None = None, snapshot_every: float = 5.0,
               snapshot_folder: Path | None = None, secure_cookies: bool = False,
               snapshot_in_background: bool = True, archive_limits: Limits | None = None) -> FastAPI:
    """The application serving the warehouse ``db`` with the state ``store``.

    ``results`` are folders (or result.json files) ``report`` wrote, imported at start;
    ``secure_cookies`` marks the session cookie Secure even over plain HTTP (behind a proxy that
    ends TLS). A new snapshot of the warehouse is taken in the background and swapped in once the
    figures readers asked of the old one are computed on it (``snapshot_in_background=False`` takes
    it in the request that looks, as tests do to see a load at once). ``archive_limits`` bound the
    archives admins send to be ingested (:class:`training_roi.web.archive.Limits`' defaults unless given);
    they are unpacked in a hidden folder beside the state file.
    """
    snapshots = Snapshots(db, snapshot_folder or store.path.parent / f".{db.name}.snapshots", every=snapshot_every,
                          on_new=warm, background=snapshot_in_background)
    if results:
        import_results(store, results)

    runner = runs.Runner(store, snapshots)
    loader = Loader(store, db, store.path.parent / f".{db.name}.ingests")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        runner.start()  # runs a stopped server left unfinished: failed, not run again
        loader.start()  # ingests likewise
        yield
        runner.stop()  # runs still queued or running: failed; nothing half-written
        loader.stop()  # ingests still queued or running: failed; the running one stopped as Ctrl-C stops it
        snapshots.close()
        store.close()

    app = FastAPI(title="training-roi", version=__version__, lifespan=lifespan,
                  summary="Did the training program pay off? Programs, studies, KPIs and data quality.",
                  openapi_url="/api/v1/openapi.json", docs_url=None, redoc_url=None)
    app.state.store, app.state.snapshots, app.state.secure_cookies = store, snapshots, secure_cookies
    app.state.runner, app.state.loader, app.state.archive_limits = runner, loader, archive_limits or Limits()
    app.include_router(api.router)
    app.include_router(runs.api_router)
    app.include_router(drill.api)
    app.include_router(pages.router)
    app.include_router(drill.pages)
    app.include_router(runs.page_router)
    app.include_router(admin.api_router)
    app.include_router(admin.page_router)
    app.include_router(ingests.api_router)
    app.include_router(ingests.page_router)

    app.add_middleware(SecurityHeaders)

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/login?next={quote(exc.path)}", status_code=303)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        detail = "; ".join(str(d.get("msg", d)) for d in exc.detail) if isinstance(exc.detail, list) else exc.detail
        session = session_for(store, request.cookies.get(COOKIE))
        return pages.render(request, "error.html", Viewer(session.user, session) if session else None,
                            status=exc.status_code, status_code=exc.status_code, detail=detail)

    return app
