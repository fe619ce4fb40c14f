"""Who is asking, and may they: the FastAPI dependencies every route declares.

The API takes ``Authorization: Bearer TOKEN`` (a token from ``training-roi users add``) and
answers 401 without a valid one; the pages take the login session's cookie and send the browser
to the login page without one. A signed-in user without the permission a route needs gets 403,
and nothing of the data. Every successful read of data is written to the audit log by the route
(what it viewed), every refusal here.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, HTTPException, Path, Request

from training_roi.web.auth import Permission, allowed, bearer_token, session_for, token_user
from training_roi.web.snapshot import Snapshots
from training_roi.web.store import Session, Store, User

__all__ = [
    "COOKIE",
    "LoginRequired",
    "Version",
    "Viewer",
    "api_user",
    "client_of",
    "page_session",
    "require",
    "snapshots_of",
    "store_of",
    "unprocessable",
]

Version = Annotated[int, Path(ge=1, le=2**31 - 1, description="a run's version: 1 for a study's first run")]
"""A run's version in a path: bounded, so that no number SQLite cannot hold reaches the store."""

COOKIE = "training_roi_session"
"""The login session's cookie (HttpOnly, SameSite=Strict; Secure over HTTPS or when the server says so)."""


class LoginRequired(Exception):
    """A page was asked for without a session: the app answers with a redirect to the login page."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def store_of(request: Request) -> Store:
    """The server's state store."""
    store: Store = request.app.state.store
    return store


def snapshots_of(request: Request) -> Snapshots:
    """The warehouse's snapshots."""
    snapshots: Snapshots = request.app.state.snapshots
    return snapshots


def client_of(request: Request) -> str | None:
    """The client's address, for the audit log and the login throttle."""
    return request.client.host if request.client else None


def unprocessable(field: str, message: str, value: object = None) -> HTTPException:
    """A 422 shaped as FastAPI's own validation errors (``detail`` a list), as the OpenAPI document declares."""
    where = ["query", field] if field else ["body"]
    return HTTPException(status_code=422, detail=[{"type": "value_error", "loc": where, "msg": message,
                                                   "input": value}])


def api_user(request: Request, authorization: Annotated[str | None, Header()] = None) -> User:
    """The user of a Bearer token; 401 (with ``WWW-Authenticate: Bearer``) without a valid one."""
    store = store_of(request)
    user = token_user(store, bearer_token(authorization))
    if user is None:
        store.audit("api_refused", target=request.url.path, detail="no valid token", client=client_of(request))
        raise HTTPException(status_code=401, detail="a valid API token is needed: Authorization: Bearer TOKEN",
                            headers={"WWW-Authenticate": "Bearer"})
    return user


def page_session(request: Request) -> Session:
    """The login session of a page's request; without one, the browser is sent to the login page."""
    session = session_for(store_of(request), request.cookies.get(COOKIE))
    if session is None:
        raise LoginRequired(request.url.path)
    return session


class Viewer:
    """A route's reader: the user (from a token or a session) and whether they may do something."""

    def __init__(self, user: User, session: Session | None = None) -> None:
        self.user, self.session = user, session

    def may(self, permission: Permission) -> bool:
        """Whether the user's role has ``permission``."""
        return allowed(self.user.role, permission)


def require(permission: Permission, *, api: bool) -> object:
    """A dependency giving the :class:`Viewer` when their role has ``permission``; 403 otherwise."""

    def check_api(request: Request, user: Annotated[User, Depends(api_user)]) -> Viewer:
        return _checked(request, Viewer(user), permission)

    def check_page(request: Request, session: Annotated[Session, Depends(page_session)]) -> Viewer:
        return _checked(request, Viewer(session.user, session), permission)

    return Depends(check_api if api else check_page)


def _checked(request: Request, viewer: Viewer, permission: Permission) -> Viewer:
    if not viewer.may(permission):
        store_of(request).audit("refused", user=viewer.user.name, target=request.url.path,
                                detail=f"role {viewer.user.role} lacks {permission}", client=client_of(request))
        raise HTTPException(status_code=403, detail=f"your role ({viewer.user.role}) may not see this")
    return viewer

