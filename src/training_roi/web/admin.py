"""The admin area: the server's users and its audit log, as pages and as API endpoints, for admins only.

The pages ``/admin/users`` and ``/admin/audit`` and the endpoints ``/api/v1/users`` and
``/api/v1/audit`` need the ``manage_users`` permission (an admin's): other roles get 403, and the
API 401 without a token. Every change is made by the functions ``training-roi users`` calls
(:mod:`training_roi.web.auth`), so a name's form, the password's length, a token shown once, the
last admin never removed or demoted, and the audit line saying who did what to whom are the same
wherever the change is made. The pages' forms post with the session's CSRF token. An API token is
never listed: it is shown once, in the answer that issued it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from training_roi._format import plural
from training_roi.errors import AccountError
from training_roi.web import auth, roster
from training_roi.web.access import COOKIE, Viewer, client_of, require, store_of, unprocessable
from training_roi.web.auth import MIN_PASSWORD_LENGTH, TOKEN_SHOWN_ONCE, allowed, csrf_ok, session_for
from training_roi.web.pages import render
from training_roi.web.roster import Account, LastAdminError
from training_roi.web.store import NAME_PATTERN, ROLES, AuditEntry, Role

__all__ = ["Limit", "Offset", "Refusal", "api_router", "page_router", "paged"]

api_router = APIRouter(prefix="/api/v1", tags=["admin"])
page_router = APIRouter(include_in_schema=False)

Admin = Annotated[Viewer, require("manage_users", api=True)]
AdminPage = Annotated[Viewer, require("manage_users", api=False)]
UserName = Annotated[str, Path(max_length=64, description="a user's name, in any case")]
Offset = Annotated[int, Query(ge=0, le=2**31 - 1, description="rows skipped before the page")]
Limit = Annotated[int, Query(ge=1, le=1_000, description="rows of a page")]
Filter = Annotated[str | None, Query(max_length=200)]
Through = Annotated[int | None, Query(ge=1, le=2**63 - 1, description="only the lines up to this id: the Link "
                                                                       "to the next page gives it")]

AUDIT_PAGE = 50
"""Lines of the audit log a page shows."""


def _utc(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _when(moment: datetime | None) -> str:
    """A time on the page: to the minute, UTC, in an order no reader mistakes (2025-03-14 09:05 UTC); or never."""
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "never"


# -- the API ----------------------------------------------------------------------------------------


class UserOut(BaseModel):
    """A user as an admin sees them: role, password set or not, tokens and sign-ins; never a token or a hash."""

    name: str
    role: Role
    created: str
    password_set: bool
    disabled: bool
    tokens: int = Field(description="how many API tokens the user has")
    token_last_used: str | None = Field(description="when one of them was last used (to the minute), or null")
    last_sign_in: str | None = Field(description="when the user last signed in to the pages, or null")


class AddedUser(UserOut):
    """A user just added, with their first API token: shown in this answer once, never again."""

    token: str


class NewUser(BaseModel):
    """A user to add: a name, a role and, for the pages, a password (at least 8 characters) or none."""

    name: str = Field(pattern=f"^{NAME_PATTERN}$", description="1 to 64 letters, digits or . _ @ + -")
    role: Role
    password: str | None = Field(default=None, min_length=MIN_PASSWORD_LENGTH)


class RoleChange(BaseModel):
    """The role a user is to have."""

    role: Role


class RemovedUser(BaseModel):
    """A user removed: their role, and how many API tokens stopped working with them."""

    name: str
    role: Role
    tokens_revoked: int


class AuditLine(BaseModel):
    """One line of the audit log: when (UTC), who (null when nobody was signed in), what, to what, from where."""

    id: int
    at: str
    user: str | None
    action: str
    target: str | None
    detail: str | None
    client: str | None


class Refusal(BaseModel):
    """Why the request was refused, in words."""

    detail: str


_REFUSED: dict[int | str, dict[str, Any]] = {403: {"model": Refusal, "description": "the role is not admin"}}
_MISSING: dict[int | str, dict[str, Any]] = {**_REFUSED, 404: {"model": Refusal, "description": "no such user"}}
_CONFLICT: dict[int | str, dict[str, Any]] = {
    **_MISSING, 409: {"model": Refusal, "description": "the user is the last admin, or the name is taken"}}


def _user_out(account: Account) -> UserOut:
    return UserOut(name=account.name, role=account.role, created=account.created.isoformat(),
                   password_set=account.password_set, disabled=account.disabled, tokens=account.tokens,
                   token_last_used=_utc(account.token_last_used), last_sign_in=_utc(account.last_sign_in))


def _account(request: Request, name: str) -> Account:
    """The user of that name (any case) as listed, or 404."""
    found = [a for a in roster.accounts(store_of(request)) if a.name.lower() == name.lower()]
    if not found:
        raise HTTPException(status_code=404, detail=f"no user {name!r}")
    return found[0]


def paged(request: Request, response: Response, total: int, offset: int, limit: int, **keep: int) -> None:
    """``X-Total-Count`` (rows in all) and, when there are more, a ``Link`` to the next page, as ``/kpis`` gives.

    ``keep`` are parameters the next page must carry as well (the audit log's ``through``).
    """
    response.headers["X-Total-Count"] = str(total)
    if offset + limit < total:
        following = request.url.include_query_params(offset=offset + limit, limit=limit, **keep)
        response.headers["Link"] = f'<{following}>; rel="next"'


def _conflict(exc: AccountError) -> HTTPException:
    return HTTPException(status_code=409, detail=str(exc))


@api_router.get("/users", response_model=list[UserOut], responses=_REFUSED)
def users(request: Request, response: Response, viewer: Admin, offset: Offset = 0, limit: Limit = 100) -> list[UserOut]:
    """The users by name, a page at a time (``X-Total-Count``, ``Link``); admins only. Tokens are never listed."""
    everyone = roster.accounts(store_of(request))
    paged(request, response, len(everyone), offset, limit)
    store_of(request).audit("view", user=viewer.user.name, target="users", client=client_of(request))
    return [_user_out(a) for a in everyone[offset:offset + limit]]


@api_router.get("/users/{name}", response_model=UserOut, responses=_MISSING)
def user(request: Request, viewer: Admin, name: UserName) -> UserOut:
    """One user; admins only."""
    found = _account(request, name)
    store_of(request).audit("view", user=viewer.user.name, target=f"user {found.name}", client=client_of(request))
    return _user_out(found)


@api_router.post("/users", status_code=201, response_model=AddedUser, responses=_CONFLICT)
def add_user(request: Request, response: Response, viewer: Admin, new: NewUser) -> AddedUser:
    """Add a user, as ``training-roi users add`` does: the answer holds their API token, shown this once."""
    store = store_of(request)
    if store.user(new.name) is not None:
        raise HTTPException(status_code=409, detail=f"user {new.name!r} exists already")
    try:
        added, token = auth.add_user(store, new.name, new.role, password=new.password, by=viewer.user.name,
                                     client=client_of(request))
    except AccountError as exc:
        raise unprocessable("", str(exc)) from None
    response.headers["Location"] = f"/api/v1/users/{quote(added.name)}"
    return AddedUser(**_user_out(_account(request, added.name)).model_dump(), token=token)


@api_router.patch("/users/{name}", response_model=UserOut, responses=_CONFLICT)
def change_role(request: Request, viewer: Admin, name: UserName, change: RoleChange) -> UserOut:
    """Give a user another role; the last admin keeps theirs (409)."""
    found = _account(request, name)
    try:
        auth.change_role(store_of(request), found.name, change.role, by=viewer.user.name, client=client_of(request))
    except LastAdminError as exc:
        raise _conflict(exc) from None
    return _user_out(_account(request, found.name))


@api_router.delete("/users/{name}", response_model=RemovedUser, responses=_CONFLICT)
def remove_user(request: Request, viewer: Admin, name: UserName) -> RemovedUser:
    """Remove a user: their tokens and sessions stop working, the audit log keeps their name; never the last admin."""
    found = _account(request, name)
    try:
        removed, tokens = auth.remove_user(store_of(request), found.name, by=viewer.user.name,
                                           client=client_of(request))
    except LastAdminError as exc:
        raise _conflict(exc) from None
    return RemovedUser(name=removed.name, role=removed.role, tokens_revoked=tokens)


def _line(entry: AuditEntry) -> AuditLine:
    return AuditLine(id=entry.id, at=entry.at.isoformat(), user=entry.user, action=entry.action, target=entry.target,
                     detail=entry.detail, client=entry.client)


@api_router.get("/audit", response_model=list[AuditLine], responses=_REFUSED)
def audit(request: Request, response: Response, viewer: Admin, user: Filter = None, action: Filter = None,
          offset: Offset = 0, limit: Limit = 100, through: Through = None) -> list[AuditLine]:
    """The audit log, newest first, of one user (any case) and/or one action, a page at a time; admins only.

    The read is itself a line of the log, written after the page is read. The ``Link`` to the next
    page carries ``through``, the id of the newest line the first page counted, so that lines
    written while a reader pages (their own reads among them) do not shift the pages after it.
    """
    store = store_of(request)
    page = store.audit_log(offset=offset, limit=limit, user=user or None, action=action or None, through=through)
    paged(request, response, page.total, offset, limit, **({} if page.through is None else
                                                            {"through": page.through}))
    store.audit("view", user=viewer.user.name, target="audit log", detail=f"user={user or ''} action={action or ''}",
                client=client_of(request))
    return [_line(e) for e in page.entries]


# -- the pages --------------------------------------------------------------------------------------


def _users_page(request: Request, viewer: Viewer, message: str = "", *, added: tuple[str, str] | None = None,
                status: int = 200) -> HTMLResponse:
    return render(request, "admin_users.html", viewer, status=status, accounts=roster.accounts(store_of(request)),
                  roles=ROLES, message=message, added=added, token_words=TOKEN_SHOWN_ONCE,
                  min_password=MIN_PASSWORD_LENGTH, when=_when)


@page_router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, viewer: AdminPage) -> HTMLResponse:
    """Every user with their role, password, tokens and last sign-in, and the forms that change them."""
    store_of(request).audit("view", user=viewer.user.name, target="users", client=client_of(request))
    return _users_page(request, viewer)


Done = tuple[str, tuple[str, str] | None]
"""What a change from a form came to: a message, and a user's name with the API token issued to them (or None)."""


def _change(request: Request, viewer: Viewer, csrf: str, change: Callable[[], Done]) -> Response:
    """Make a change from a form (its CSRF token checked first) and show the users with what it came to.

    A refusal (a bad name, a short password, the last admin) is the page again with the reason. When
    the change ended the admin's own session (their password, their removal) they go to the sign-in
    page; when it took their admin role away, to the programs.
    """
    if not csrf_ok(viewer.session, csrf):
        raise HTTPException(status_code=403, detail="the form's CSRF token does not match the session: load the "
                                                    "page again")
    try:
        message, issued = change()
    except AccountError as exc:
        return _users_page(request, viewer, str(exc), status=409 if isinstance(exc, LastAdminError) else 422)
    me = session_for(store_of(request), request.cookies.get(COOKIE))
    if me is None:
        return RedirectResponse(f"/login?message={quote(message + ': sign in again')}", status_code=303)
    if not allowed(me.user.role, "manage_users"):
        return RedirectResponse("/", status_code=303)
    return _users_page(request, viewer, message, added=issued)


FormText = Annotated[str, Form()]
_TWICE = "the two passwords do not match: type the same one twice"


@page_router.post("/admin/users", response_class=HTMLResponse)
def add_user_form(request: Request, viewer: AdminPage, csrf: FormText = "", name: FormText = "", role: FormText = "",
                  password: FormText = "", again: FormText = "") -> Response:
    """Add a user (with a password, or none yet) and show their first API token, once."""

    def add() -> Done:
        if password != again:
            raise AccountError(_TWICE)
        user, token = auth.add_user(store_of(request), name.strip(), role, password=password or None,
                                    by=viewer.user.name, client=client_of(request))
        if user.password_hash is None:
            return (f"added {user.name} ({user.role}); {user.name} has no password for the pages yet: the form "
                    "below (or `training-roi users password`) sets one"), (user.name, token)
        return f"added {user.name} ({user.role}) with a password", (user.name, token)

    return _change(request, viewer, csrf, add)


@page_router.post("/admin/users/{name}/role", response_class=HTMLResponse)
def role_form(request: Request, viewer: AdminPage, name: str, csrf: FormText = "", role: FormText = "") -> Response:
    """Give a user another role (never the last admin's)."""

    def change() -> Done:
        user, before = auth.change_role(store_of(request), name, role, by=viewer.user.name,
                                        client=client_of(request))
        return f"{user.name} was {before} and is now {user.role}", None

    return _change(request, viewer, csrf, change)


@page_router.post("/admin/users/{name}/password", response_class=HTMLResponse)
def password_form(request: Request, viewer: AdminPage, name: str, csrf: FormText = "", password: FormText = "",
                  again: FormText = "") -> Response:
    """Set or reset a user's password (typed twice); their open sessions end."""

    def change() -> Done:
        if password != again:
            raise AccountError(_TWICE)
        user, ended = auth.change_password(store_of(request), name, password, by=viewer.user.name,
                                           client=client_of(request))
        return f"password set for {user.name}; {plural(ended, 'open login session')} ended", None

    return _change(request, viewer, csrf, change)


@page_router.post("/admin/users/{name}/tokens", response_class=HTMLResponse)
def tokens_form(request: Request, viewer: AdminPage, name: str, csrf: FormText = "", do: FormText = "") -> Response:
    """Give a user a new API token beside any they have, shown once (``do=issue``), or stop every one (``revoke``)."""

    def change() -> Done:
        store, by = store_of(request), {"by": viewer.user.name, "client": client_of(request)}
        if do == "issue":
            token = auth.issue_token(store, name, **by)
            user = store.require_user(name)
            return f"a new API token for {user.name}", (user.name, token)
        if do == "revoke":
            revoked = auth.revoke_tokens(store, name, **by)
            return f"{plural(revoked, 'API token')} of {store.require_user(name).name} no longer work", None
        raise AccountError(f"the tokens of {name}: press the button that issues a new one or the one that revokes "
                           "them")

    return _change(request, viewer, csrf, change)


@page_router.post("/admin/users/{name}/remove", response_class=HTMLResponse)
def remove_form(request: Request, viewer: AdminPage, name: str, csrf: FormText = "",
                confirm: FormText = "") -> Response:
    """Remove a user (the box beside the button ticked to confirm); never the last admin."""

    def change() -> Done:
        if confirm != "yes":
            raise AccountError(f"{name} was not removed: tick the box beside the button to confirm")
        user, tokens = auth.remove_user(store_of(request), name, by=viewer.user.name, client=client_of(request))
        return (f"removed {user.name} ({user.role}): {plural(tokens, 'API token')} and every login session of "
                "theirs no longer work"), None

    return _change(request, viewer, csrf, change)


@page_router.get("/admin/audit", response_class=HTMLResponse)
def audit_page(request: Request, viewer: AdminPage, user: Annotated[str, Query(max_length=200)] = "",
               action: Annotated[str, Query(max_length=200)] = "", offset: Offset = 0,
               through: Through = None) -> HTMLResponse:
    """The audit log, newest first, filtered by user and action, fifty lines at a time.

    The links to older and newer pages keep to the lines there were when the first was shown.
    """
    store = store_of(request)
    page = store.audit_log(offset=offset, limit=AUDIT_PAGE, user=user.strip() or None, action=action or None,
                           through=through)
    actions = roster.audit_actions(store)
    store.audit("view", user=viewer.user.name, target="audit log", detail=f"user={user} action={action}",
                client=client_of(request))
    return render(request, "admin_audit.html", viewer, page=page, user_filter=user, action=action, actions=actions,
                  names=[a.name for a in roster.accounts(store)])
