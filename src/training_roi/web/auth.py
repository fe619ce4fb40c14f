"""Who may do what on the server, and the checks that say who is asking.

Three roles, each a set of permissions (:data:`PERMISSIONS`): a **viewer** reads aggregates only (the
org and its teams — no person-level rows, names or emails); an **analyst** reads everything and runs
studies; an **admin** also manages users and loads data. :func:`allowed` is the one question the
server asks.

The checks are thin functions over :class:`~training_roi.web.store.Store`, for the server's request
handlers to call:

* :func:`login` — refuses at once while the name or the client address is throttled (5 failed attempts
  within 15 minutes: :func:`throttled_until` says until when; a correct password does not get through),
  else verifies the password (Argon2id, re-hashed when the hasher's parameters have grown) and opens a
  session of 8 hours;
* :func:`session_for` — the open, unexpired session of a cookie, its user not disabled;
* :func:`token_user` — the user of a Bearer token (:func:`bearer_token` reads the header);
* :func:`csrf_ok` — a form's CSRF token against its session's, compared in constant time.

Users are added, given a password or another role, given a new API token, have their tokens revoked
or are removed by the functions at the end (:func:`add_user`, :func:`change_password`,
:func:`change_role`, :func:`issue_token`, :func:`revoke_tokens`, :func:`remove_user`), which the
command line, the admin page and the API all call; none leaves the server without an admin.

Every login, failed or refused attempt, logout and user change is written to the audit log, with
who made the change (None from the command line).
"""

from __future__ import annotations

import hmac
import threading
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from types import MappingProxyType
from typing import Literal, get_args

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from training_roi.errors import AccountError
from training_roi.web import roster
from training_roi.web.store import ROLES, Role, Session, Store, User

__all__ = [
    "MAX_FAILED_LOGINS",
    "MIN_PASSWORD_LENGTH",
    "PERMISSIONS",
    "PERMISSION_NAMES",
    "SESSION_LIFETIME",
    "THROTTLE_WINDOW",
    "TOKEN_SHOWN_ONCE",
    "Login",
    "Permission",
    "add_user",
    "allowed",
    "bearer_token",
    "change_password",
    "change_role",
    "check_password",
    "csrf_ok",
    "issue_token",
    "login",
    "logout",
    "remove_user",
    "revoke_tokens",
    "session_for",
    "throttled_until",
    "token_user",
    "verify_password",
]

Permission = Literal["read_aggregates", "read_people", "run_studies", "manage_users", "ingest"]
PERMISSION_NAMES: tuple[Permission, ...] = get_args(Permission)

PERMISSIONS: MappingProxyType[Role, frozenset[Permission]] = MappingProxyType({
    # Org and team levels only: no person-level rows, names or emails.
    "viewer": frozenset({"read_aggregates"}),
    # Everything read-only, and running studies.
    "analyst": frozenset({"read_aggregates", "read_people", "run_studies"}),
    "admin": frozenset(PERMISSION_NAMES),
})

MAX_FAILED_LOGINS = 5
THROTTLE_WINDOW = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=8)
MIN_PASSWORD_LENGTH = 8
TOKEN_SHOWN_ONCE = "Their API token (send it as `Authorization: Bearer TOKEN`) follows; it will not be shown again:"
"""What is said before a new API token, on the command line and on the admin page alike."""


def allowed(role: str, permission: str) -> bool:
    """Whether ``role`` may do ``permission``.

    Raises
    ------
    ValueError
        The role or the permission is not one the server knows (a misspelt name must not quietly deny or
        allow).
    """
    if role not in ROLES:
        raise ValueError(f"role {role!r}: expected one of {', '.join(ROLES)}")
    if permission not in PERMISSION_NAMES:
        raise ValueError(f"permission {permission!r}: expected one of {', '.join(PERMISSION_NAMES)}")
    return permission in PERMISSIONS[role]


def _when(moment: datetime) -> str:
    """A time to the minute, rounded up (so that "after 09:16" is never too early), in UTC."""
    late = moment.astimezone(UTC)
    whole = late.replace(second=0, microsecond=0)
    return (whole if whole == late else whole + timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M UTC")


# -- passwords ------------------------------------------------------------------------------------


@cache
def _decoy(time_cost: int, memory_cost: int, parallelism: int, hash_len: int, salt_len: int, kind: Type) -> str:
    """A hash of nothing anyone types, made with the hasher's parameters.

    Verifying against it for a name that does not exist takes as long as for one that does, so the time
    taken does not tell which names exist.
    """
    hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism,
                            hash_len=hash_len, salt_len=salt_len, type=kind)
    return hasher.hash("\x00 no user has this password \x00")


HASHING_AT_ONCE = 2
"""Argon2 verifications run at once, at most: each takes 64 MiB and a core for about a quarter of a
second, so a burst of sign-ins (or of attempts) queues behind them instead of exhausting memory."""

_hashing = threading.BoundedSemaphore(HASHING_AT_ONCE)


def verify_password(store: Store, name: str, password: str) -> User | None:
    """The user when ``password`` is theirs (and they are not disabled), else None.

    A hash made with weaker parameters than the store's hasher now uses is replaced by a new one.
    Unknown names, disabled users and users without a password cost one Argon2 verification all the same.
    """
    hasher = store.hasher
    user = store.user(name)
    stored = user.password_hash if user is not None and not user.disabled else None
    if stored is None:
        with suppress(VerificationError), _hashing:
            hasher.verify(_decoy(hasher.time_cost, hasher.memory_cost, hasher.parallelism, hasher.hash_len,
                                 hasher.salt_len, hasher.type), password)
        return None
    assert user is not None
    try:
        with _hashing:
            hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if hasher.check_needs_rehash(stored):
        user = store.set_password(user.name, password)
    return user


# -- throttling and login -------------------------------------------------------------------------


def throttled_until(store: Store, name: str, client: str | None = None) -> datetime | None:
    """When attempts for ``name`` (and from ``client``) are allowed again, or None when they are allowed now.

    Throttled means :data:`MAX_FAILED_LOGINS` failed attempts or more for the name, or from the client
    address, within the last :data:`THROTTLE_WINDOW`; the attempt is allowed again once enough of them
    are older than the window. Refused attempts are not counted, so waiting always ends the throttle.
    """
    now = store.now()
    since = now - THROTTLE_WINDOW
    counts = [store.failed_logins(since, name=name)]
    if client is not None:
        counts.append(store.failed_logins(since, client=client))
    until = [failures[len(failures) - MAX_FAILED_LOGINS] + THROTTLE_WINDOW for failures in counts
             if len(failures) >= MAX_FAILED_LOGINS]
    return max(until) if until else None


@dataclass(frozen=True)
class Login:
    """What a login attempt came to: a session (and its id, for the cookie, given once here), or a refusal."""

    user: User | None
    session_id: str | None
    session: Session | None
    retry_at: datetime | None
    message: str

    @property
    def ok(self) -> bool:
        """Whether the attempt opened a session."""
        return self.session is not None


def login(store: Store, name: str, password: str, *, client: str | None = None,
          lifetime: timedelta = SESSION_LIFETIME) -> Login:
    """Log in with a name and password from ``client`` (its address): a new session, or why not.

    A throttled name or address is refused before the password is looked at (and that refusal is not a
    failed attempt); a wrong name or password is one failed attempt, said the same way for both.
    """
    until = throttled_until(store, name, client)
    if until is not None:
        store.audit("login_throttled", target=name, detail=f"refused until {_when(until)}", client=client)
        return Login(user=None, session_id=None, session=None, retry_at=until,
                     message=f"too many failed attempts: try again after {_when(until)}")
    user = verify_password(store, name, password)
    store.record_login_attempt(name, client, ok=user is not None,
                               forget_before=store.now() - THROTTLE_WINDOW)
    if user is None:
        store.audit("login_failed", target=name, client=client)
        return Login(user=None, session_id=None, session=None, retry_at=None, message="wrong name or password")
    session_id, session = store.open_session(user.name, lifetime)
    store.audit("login", user=user.name, client=client)
    return Login(user=user, session_id=session_id, session=session, retry_at=None,
                 message=f"signed in as {user.name} until {_when(session.expires)}")


def session_for(store: Store, session_id: str | None) -> Session | None:
    """The session of a cookie when it is open, has not expired and its user is not disabled; else None."""
    if not session_id:
        return None
    session = store.session(session_id)
    if session is None or session.ended is not None or session.user.disabled or store.now() >= session.expires:
        return None
    return session


def logout(store: Store, session_id: str | None, *, client: str | None = None) -> bool:
    """End the session of a cookie; False when it was not open."""
    session = session_for(store, session_id)
    if session is None or session_id is None:
        return False
    ended = store.end_session(session_id)
    if ended:
        store.audit("logout", user=session.user.name, client=client)
    return ended


def csrf_ok(session: Session | None, submitted: str | None) -> bool:
    """Whether a form's CSRF token is its session's, compared in constant time (no session, no token: False)."""
    if session is None or not submitted:
        return False
    return hmac.compare_digest(session.csrf_token.encode("utf-8"), submitted.encode("utf-8"))


# -- API tokens -----------------------------------------------------------------------------------


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header (the scheme in any case), or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token and " " not in token else None


def token_user(store: Store, token: str | None) -> User | None:
    """The user an API token belongs to, when they are not disabled; else None."""
    if not token:
        return None
    user = store.user_for_token(token)
    return None if user is None or user.disabled else user


# -- users ----------------------------------------------------------------------------------------


def add_user(store: Store, name: str, role: str, *, password: str | None = None, by: str | None = None,
             client: str | None = None) -> tuple[User, str]:
    """Add a user with a first API token; the token is returned once, here, and only its hash is kept.

    ``by`` is the user who added them (None from the command line), for the audit log.
    """
    if password is not None:
        check_password(password)
    user = store.add_user(name, role, password=password)
    token = store.add_token(user.name)
    store.audit("user_added", user=by, target=user.name, detail=f"role {user.role}", client=client)
    return user, token


def check_password(password: str) -> None:
    """Refuse a password shorter than :data:`MIN_PASSWORD_LENGTH` characters (or empty), saying so."""
    if not password.strip():
        raise AccountError("the password is empty: type one of at least "
                           f"{MIN_PASSWORD_LENGTH} characters")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password has {len(password)} characters: use at least {MIN_PASSWORD_LENGTH}")


def change_password(store: Store, name: str, password: str, *, by: str | None = None,
                    client: str | None = None) -> tuple[User, int]:
    """Set a user's password (checked, then hashed) and end their open sessions; the user and how many ended."""
    check_password(password)
    user = store.set_password(name, password)
    ended = store.end_sessions(user.name)
    store.audit("password_set", user=by, target=user.name, detail=f"{ended} open sessions ended", client=client)
    return user, ended


def remove_user(store: Store, name: str, *, by: str | None = None, client: str | None = None) -> tuple[User, int]:
    """Remove a user, their API tokens and sessions; the user removed and how many tokens stopped working.

    The last admin is not removed (:class:`~training_roi.web.roster.LastAdminError`): nobody could
    manage the users from the pages or the API any more.
    """
    user, tokens = roster.delete_user(store, name)
    store.audit("user_removed", user=by, target=user.name, detail=f"role {user.role}, {tokens} API tokens",
                client=client)
    return user, tokens


def change_role(store: Store, name: str, role: str, *, by: str | None = None,
                client: str | None = None) -> tuple[User, Role]:
    """Give a user another role (the last admin keeps theirs); the user as changed and the role they had.

    Their open sessions and tokens carry the new role from their next request.
    """
    user, before = roster.set_role(store, name, role)
    store.audit("role_changed", user=by, target=user.name, detail=f"{before} → {user.role}", client=client)
    return user, before


def revoke_tokens(store: Store, name: str, *, by: str | None = None, client: str | None = None) -> int:
    """Stop every API token of a user (their password and sessions keep working); how many stopped."""
    revoked = roster.revoke_tokens(store, name)
    store.audit("tokens_revoked", user=by, target=store.require_user(name).name, detail=f"{revoked} API tokens",
                client=client)
    return revoked


def issue_token(store: Store, name: str, *, by: str | None = None, client: str | None = None) -> str:
    """A new API token for a user, beside any they have: returned once, here; only its hash is kept."""
    token = store.add_token(name)
    store.audit("token_issued", user=by, target=store.require_user(name).name, client=client)
    return token
