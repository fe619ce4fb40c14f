"""The server's own state: users, their API tokens and login sessions, login attempts, the audit log, results.

It lives in a SQLite file beside the warehouse (``roi.duckdb`` → ``roi.duckdb.server.sqlite``), so the
server never writes into the warehouse, which an ingest may be loading at the same time. The file is
opened in WAL mode (readers never wait for the one writer) and each thread keeps its own connection
(opened on its first call), so the server's request threads can share one :class:`Store`. Writes
that read before they write (the next version of a study's result) take the write lock first
(``BEGIN IMMEDIATE``), so two threads never hand out the same version.

Secrets are kept only as hashes: passwords as Argon2id hashes (argon2-cffi's :class:`PasswordHasher`),
API tokens and login-session ids as SHA-256 hex digests, so a copy of the file lets nobody sign in. A
session's CSRF token is kept as it is, because the pages print it into their forms; it is worth
nothing without the session's cookie. The file is created readable by its owner only.

Times are UTC, stored as fixed-width ISO 8601 text (``2025-01-31T09:30:00.000000Z``), so that text
order is time order. The clock is a parameter, so tests can move time instead of waiting.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, cast, get_args

from argon2 import PasswordHasher

from training_roi.errors import AccountError, StateError

__all__ = [
    "NAME_PATTERN",
    "ROLES",
    "SCHEMA_VERSION",
    "STATUSES",
    "TOKEN_USE_PRECISION",
    "ApiToken",
    "AuditEntry",
    "AuditPage",
    "Clock",
    "Role",
    "Session",
    "Status",
    "Store",
    "StoredResult",
    "User",
    "default_state_path",
    "state_path",
    "validate_user",
]

Role = Literal["viewer", "analyst", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
Status = Literal["queued", "running", "done", "failed"]
STATUSES: tuple[Status, ...] = get_args(Status)
Clock = Callable[[], datetime]

SCHEMA_VERSION = 1
TOKEN_USE_PRECISION = timedelta(minutes=1)
STATE_SUFFIX = ".server.sqlite"
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}"
"""What a user's name is: 1 to 64 letters, digits or ``. _ @ + -``, starting with a letter or digit."""
_NAME = re.compile(NAME_PATTERN)
_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def default_state_path(db: Path) -> Path:
    """The state file beside a warehouse file: its path with ``.server.sqlite`` appended."""
    return db.with_name(db.name + STATE_SUFFIX)


def state_path(db: str, state: Path | None = None) -> Path:
    """The state file for ``--db`` and ``--state``: ``state`` when given, else the one beside the warehouse.

    Raises
    ------
    StateError
        ``state`` is not given and the warehouse is not a DuckDB file that exists (a URL of another
        engine has no folder to keep the state in; name one with ``--state``).
    """
    if state is not None:
        return state
    file = db.split("://", 1)[1].split("?", 1)[0] if db.lower().startswith("duckdb://") else (
        None if "://" in db else db)
    if file is None or file in ("", ":memory:"):
        raise StateError(f"--db {db} is not a file the server's state can be kept beside: name the state "
                         "file with --state")
    if not Path(file).is_file():
        raise StateError(f"no warehouse at {file}: run `training-roi ingest DATA_DIR --db {db}` first, or name "
                         "the warehouse with --db")
    return default_state_path(Path(file))


def validate_user(name: str, role: str) -> None:
    """Refuse a user name that is not 1–64 letters, digits or ``. _ @ + -`` (from a letter or digit), or a bad role.

    Raises
    ------
    AccountError
        Naming what is wrong and what is expected.
    """
    if not _NAME.fullmatch(name):
        raise AccountError(f"user name {name!r}: expected 1 to 64 letters, digits or . _ @ + - , starting with a "
                           "letter or digit")
    if role not in ROLES:
        raise AccountError(f"--role {role}: expected one of {', '.join(ROLES)}")


def _text(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} has no time zone: the state keeps UTC times")
    return moment.astimezone(UTC).strftime(_TIME)


def _time(text: str) -> datetime:
    return datetime.strptime(text, _TIME).replace(tzinfo=UTC)


def _maybe_time(text: str | None) -> datetime | None:
    return None if text is None else _time(text)


def _digest(secret: str) -> str:
    """SHA-256 of a random secret (a token or a session id): what the file keeps instead of the secret."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class User:
    """Someone who may use the server: a name (unique whatever its case), a role, and a password hash or None."""

    id: int
    name: str
    role: Role
    password_hash: str | None
    created: datetime
    disabled: bool


@dataclass(frozen=True)
class ApiToken:
    """An API token as the file knows it: its SHA-256 (never the token), whose it is, and when it was last used."""

    token_hash: str
    user: str
    created: datetime
    last_used: datetime | None


@dataclass(frozen=True)
class Session:
    """A login session of the pages: its user, the CSRF token its forms carry, and its lifetime."""

    user: User
    csrf_token: str
    created: datetime
    expires: datetime
    ended: datetime | None


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit log: when (UTC), who (None when nobody was signed in), did what, to what, from where."""

    id: int
    at: datetime
    user: str | None
    action: str
    target: str | None
    detail: str | None
    client: str | None


@dataclass(frozen=True)
class AuditPage:
    """A page of the audit log, newest first, how many entries match in all, and the newest of them's id.

    ``through`` is what a reader passes for the next page so that lines written meanwhile (its own
    reads among them) do not shift the pages; None when nothing matches.
    """

    entries: tuple[AuditEntry, ...]
    total: int
    offset: int
    limit: int
    through: int | None = None


@dataclass(frozen=True)
class StoredResult:
    """One run of a study: a version of its study hash, its status and progress and, once done, its result.json."""

    study_hash: str
    version: int
    study_name: str
    study_yaml: str
    status: Status
    progress: str | None
    error: str | None
    document: str | None
    run_by: str | None
    created: datetime
    updated: datetime
    finished: datetime | None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'analyst', 'admin')),
    password_hash TEXT,
    created TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS api_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created TEXT NOT NULL,
    last_used TEXT
);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created TEXT NOT NULL,
    expires TEXT NOT NULL,
    ended TEXT
);
CREATE TABLE IF NOT EXISTS login_attempts (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    name TEXT NOT NULL COLLATE NOCASE,
    client TEXT,
    ok INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS login_attempts_at ON login_attempts (at);
CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    user TEXT,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT,
    client TEXT
);
CREATE TABLE IF NOT EXISTS results (
    study_hash TEXT NOT NULL,
    version INTEGER NOT NULL,
    study_name TEXT NOT NULL,
    study_yaml TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    progress TEXT,
    error TEXT,
    document TEXT,
    run_by TEXT,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    finished TEXT,
    PRIMARY KEY (study_hash, version)
);
CREATE TABLE IF NOT EXISTS result_files (
    study_hash TEXT NOT NULL,
    version INTEGER NOT NULL,
    name TEXT NOT NULL,
    content BLOB NOT NULL,
    PRIMARY KEY (study_hash, version, name),
    FOREIGN KEY (study_hash, version) REFERENCES results (study_hash, version) ON DELETE CASCADE
);
-- Every column of a run but its result.json: the lists of runs read it alone, never the documents (megabytes each).
CREATE INDEX IF NOT EXISTS results_brief ON results (study_hash, version, status, created, study_name, run_by,
    updated, finished, progress, error, study_yaml);
"""

def status_change(now: str, status: str | None, **values: str | None) -> tuple[str, list[str]]:
    """The SET clause of a job's update (a study's run, an ingest) and its parameters.

    ``updated`` is always ``now``; ``status`` and each of ``values`` are set when given; ``finished`` is
    ``now`` when the status ends the job (done or failed). A status not in :data:`STATUSES` is a ValueError.
    """
    if status is not None and status not in STATUSES:
        raise ValueError(f"status {status!r}: expected one of {', '.join(STATUSES)}")
    sets, params = ["updated = ?"], [now]
    for column, value in (("status", status), *values.items()):
        if value is not None:
            sets.append(f"{column} = ?")
            params.append(value)
    if status in ("done", "failed"):
        sets.append("finished = ?")
        params.append(now)
    return ", ".join(sets), params


_USER_COLUMNS = "users.id, users.name, users.role, users.password_hash, users.created, users.disabled"
_BRIEF_COLUMNS = ("study_hash, version, study_name, study_yaml, status, progress, error, NULL, run_by, created, "
                  "updated, finished")
"""A run's columns with NULL for its result.json."""
_RESULT_COLUMNS = ("study_hash, version, study_name, study_yaml, status, progress, error, document, run_by, "
                   "created, updated, finished")


def _user(row: Any) -> User:
    return User(id=row[0], name=row[1], role=cast(Role, row[2]), password_hash=row[3], created=_time(row[4]),
                disabled=bool(row[5]))


def _result(row: Any) -> StoredResult:
    return StoredResult(study_hash=row[0], version=row[1], study_name=row[2], study_yaml=row[3],
                        status=cast(Status, row[4]), progress=row[5], error=row[6], document=row[7], run_by=row[8],
                        created=_time(row[9]), updated=_time(row[10]), finished=_maybe_time(row[11]))


def _audit(row: Any) -> AuditEntry:
    return AuditEntry(id=row[0], at=_time(row[1]), user=row[2], action=row[3], target=row[4], detail=row[5],
                      client=row[6])


class Store:
    """The server's state in one SQLite file; safe to share between threads (each keeps its own connection).

    Parameters
    ----------
    path
        The SQLite file (see :func:`default_state_path`); created with its schema when missing.
    create
        Whether a missing file is created; the commands that only read or change existing users pass
        False, so a mistyped path is an error rather than an empty state.
    hasher
        How passwords are hashed; argon2-cffi's defaults (Argon2id, RFC 9106's low-memory profile) unless
        given. Tests pass a cheaper one so that they run fast; the product never does.
    clock
        The current time, timezone-aware; UTC now unless given.

    Raises
    ------
    StateError
        The file is missing (with ``create=False``), is not a SQLite database, or was written by a newer
        version of the product.
    """

    def __init__(self, path: Path, *, create: bool = True, hasher: PasswordHasher | None = None,
                 clock: Clock = _utc_now) -> None:
        self.path = Path(path)
        self.hasher = hasher or PasswordHasher()
        self._clock = clock
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        if self.path.is_dir():
            raise StateError(f"the server state {self.path} is a folder, not a file")
        if not self.path.is_file():
            if not create:
                raise StateError(f"no server state at {self.path}: add a user first with "
                                 "`training-roi users add NAME --role admin`")
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # Owner-only from the start; SQLite gives its -wal and -shm files the same permissions.
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            except OSError as exc:
                raise StateError(f"the server state {self.path} cannot be created: {exc.strerror or exc}") from None
        try:
            found = self._create_schema()
        except sqlite3.DatabaseError as exc:
            raise StateError(f"the server state {self.path} cannot be opened: {exc}") from None
        if found is not None and found > SCHEMA_VERSION:
            raise StateError(f"the server state {self.path} has schema version {found}, written by a newer "
                             f"training-roi; this one reads up to version {SCHEMA_VERSION}")

    def _create_schema(self) -> int | None:
        """Create what is missing of the schema; the version the file had (None when new), untouched when newer."""
        with self._connection() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("BEGIN IMMEDIATE")
            statements = [text for text in _SCHEMA.split(";") if text.strip()]
            con.execute(statements[0])  # schema_version
            found: int | None = con.execute("SELECT max(version) FROM schema_version").fetchone()[0]
            if found is not None and found > SCHEMA_VERSION:
                con.execute("ROLLBACK")
                return found
            for statement in statements[1:]:
                con.execute(statement)
            if found is None:
                con.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            con.execute("COMMIT")
        return found

    # -- plumbing ---------------------------------------------------------------------------------

    def now(self) -> datetime:
        """The store's clock: the current time in UTC."""
        moment = self._clock()
        if moment.tzinfo is None:
            raise ValueError("the clock must give timezone-aware times")
        return moment.astimezone(UTC)

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """The calling thread's connection, opened on its first use and kept (opening one costs more than a query)."""
        con: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            try:
                con.execute("PRAGMA foreign_keys=ON")
                # In WAL mode NORMAL never corrupts the file; a power cut may lose the last commits (an audit
                # line, a token's last use), which is worth one fsync less on every write.
                con.execute("PRAGMA synchronous=NORMAL")
            except BaseException:
                con.close()
                raise
            self._local.connection = con
            with self._connections_lock:
                self._connections.append(con)
        try:
            yield con
        finally:
            if con.in_transaction:  # left by an error: nothing half-done stays open on a kept connection
                con.rollback()

    def close(self) -> None:
        """Close every thread's connection (the store opens them again if it is used after)."""
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for con in connections:
            con.close()
        self._local = threading.local()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A connection inside a transaction that holds the write lock from its start, committed at the end."""
        with self._connection() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._connection() as con:
            return con.execute(sql, params).fetchall()

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """A connection holding the write lock from its start, committed at the end (rolled back on an error).

        For changes made beside the store that must read and write as one (:mod:`training_roi.web.roster`:
        no change may leave the server without an admin, however many admins change roles at once), and
        for reads that must see one state of several tables.
        """
        return self._write()

    # -- users ------------------------------------------------------------------------------------

    def add_user(self, name: str, role: str, *, password: str | None = None) -> User:
        """Add a user; ``password`` (hashed with Argon2id) may be set now or later with :meth:`set_password`.

        Raises
        ------
        AccountError
            The name or the role is refused by :func:`validate_user`, or a user of that name (in any case)
            exists.
        """
        validate_user(name, role)
        hashed = None if password is None else self.hasher.hash(password)
        try:
            with self._write() as con:
                cursor = con.execute("INSERT INTO users (name, role, password_hash, created) VALUES (?, ?, ?, ?)",
                                     (name, role, hashed, _text(self.now())))
                row = con.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE id = ?", (cursor.lastrowid,)).fetchone()
        except sqlite3.IntegrityError:
            existing = self.user(name)
            shown = existing.name if existing else name
            raise AccountError(f"user {shown!r} exists already: choose another name, or remove it first with "
                               f"`training-roi users remove {shown}`") from None
        return _user(row)

    def user(self, name: str) -> User | None:
        """The user of that name, whatever its case, or None."""
        rows = self._read(f"SELECT {_USER_COLUMNS} FROM users WHERE name = ?", (name,))
        return _user(rows[0]) if rows else None

    def require_user(self, name: str) -> User:
        """The user of that name, or an :class:`AccountError` saying there is none."""
        found = self.user(name)
        if found is None:
            raise AccountError(f"no user {name!r}: `training-roi users list` shows who there is")
        return found

    def users(self) -> list[User]:
        """Every user, by name."""
        return [_user(r) for r in self._read(f"SELECT {_USER_COLUMNS} FROM users ORDER BY name")]

    def set_password(self, name: str, password: str) -> User:
        """Hash ``password`` with the store's hasher (Argon2id) and keep the hash as the user's password."""
        found = self.require_user(name)
        hashed = self.hasher.hash(password)
        with self._write() as con:
            con.execute("UPDATE users SET password_hash = ? WHERE id = ?", (hashed, found.id))
        return self.require_user(name)

    def set_disabled(self, name: str, disabled: bool = True) -> User:
        """Disable a user (their password, tokens and sessions stop working) or enable them again."""
        found = self.require_user(name)
        with self._write() as con:
            con.execute("UPDATE users SET disabled = ? WHERE id = ?", (int(disabled), found.id))
        return self.require_user(name)

    # -- API tokens -------------------------------------------------------------------------------

    def add_token(self, name: str) -> str:
        """A new API token for the user: returned once, here; the file keeps only its SHA-256."""
        found = self.require_user(name)
        token = secrets.token_urlsafe(32)
        with self._write() as con:
            con.execute("INSERT INTO api_tokens (token_hash, user_id, created) VALUES (?, ?, ?)",
                        (_digest(token), found.id, _text(self.now())))
        return token

    def user_for_token(self, token: str) -> User | None:
        """The user an API token belongs to, or None for a token the file does not know.

        The token's last use is noted to the minute (:data:`TOKEN_USE_PRECISION`): a client calling the
        API many times a minute costs one write a minute, not one a call.
        """
        digest = _digest(token)
        rows = self._read(f"SELECT {_USER_COLUMNS}, api_tokens.last_used FROM api_tokens JOIN users ON "
                          "users.id = api_tokens.user_id WHERE api_tokens.token_hash = ?", (digest,))
        if not rows:
            return None
        now, last = self.now(), _maybe_time(rows[0][6])
        if last is None or now - last >= TOKEN_USE_PRECISION:
            with self._write() as con:
                con.execute("UPDATE api_tokens SET last_used = ? WHERE token_hash = ?", (_text(now), digest))
        return _user(rows[0][:6])

    def tokens(self, name: str | None = None) -> list[ApiToken]:
        """The API tokens (their hashes) of one user, or of everyone, oldest first."""
        sql = ("SELECT api_tokens.token_hash, users.name, api_tokens.created, api_tokens.last_used FROM api_tokens "
               "JOIN users ON users.id = api_tokens.user_id")
        params: tuple[Any, ...] = ()
        if name is not None:
            sql, params = sql + " WHERE users.name = ?", (name,)
        rows = self._read(sql + " ORDER BY api_tokens.created, api_tokens.token_hash", params)
        return [ApiToken(token_hash=r[0], user=r[1], created=_time(r[2]), last_used=_maybe_time(r[3])) for r in rows]

    # -- login sessions ---------------------------------------------------------------------------

    def open_session(self, name: str, lifetime: timedelta) -> tuple[str, Session]:
        """A new login session for the user: its id (for the cookie; the file keeps its SHA-256) and the session."""
        found = self.require_user(name)
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        created = self.now()
        with self._write() as con:
            con.execute("INSERT INTO sessions (id_hash, user_id, csrf_token, created, expires) VALUES (?, ?, ?, ?, ?)",
                        (_digest(session_id), found.id, csrf, _text(created), _text(created + lifetime)))
        return session_id, Session(user=found, csrf_token=csrf, created=created, expires=created + lifetime, ended=None)

    def session(self, session_id: str) -> Session | None:
        """The session with that id as stored, ended or expired ones included (the checks are the caller's)."""
        rows = self._read(f"SELECT {_USER_COLUMNS}, sessions.csrf_token, sessions.created, sessions.expires, "
                          "sessions.ended FROM sessions JOIN users ON users.id = sessions.user_id "
                          "WHERE sessions.id_hash = ?", (_digest(session_id),))
        if not rows:
            return None
        r = rows[0]
        return Session(user=_user(r[:6]), csrf_token=r[6], created=_time(r[7]), expires=_time(r[8]),
                       ended=_maybe_time(r[9]))

    def end_session(self, session_id: str) -> bool:
        """End a session (logout); False when there was no open session with that id."""
        with self._write() as con:
            cursor = con.execute("UPDATE sessions SET ended = ? WHERE id_hash = ? AND ended IS NULL",
                                 (_text(self.now()), _digest(session_id)))
        return cursor.rowcount == 1

    def end_sessions(self, name: str) -> int:
        """End every open session of the user (after their password changed); how many."""
        found = self.require_user(name)
        with self._write() as con:
            cursor = con.execute("UPDATE sessions SET ended = ? WHERE user_id = ? AND ended IS NULL",
                                 (_text(self.now()), found.id))
        return cursor.rowcount

    def forget_sessions(self, before: datetime) -> int:
        """Delete the sessions that expired or ended before ``before``; how many."""
        with self._write() as con:
            cursor = con.execute("DELETE FROM sessions WHERE expires < ? OR ended < ?", (_text(before),) * 2)
        return cursor.rowcount

    # -- login attempts ---------------------------------------------------------------------------

    def record_login_attempt(self, name: str, client: str | None, ok: bool, *,
                             forget_before: datetime | None = None) -> None:
        """Note an attempt to log in as ``name`` from ``client``; attempts older than ``forget_before`` are deleted."""
        with self._write() as con:
            con.execute("INSERT INTO login_attempts (at, name, client, ok) VALUES (?, ?, ?, ?)",
                        (_text(self.now()), name, client, int(ok)))
            if forget_before is not None:
                con.execute("DELETE FROM login_attempts WHERE at < ?", (_text(forget_before),))

    def failed_logins(self, since: datetime, *, name: str | None = None, client: str | None = None) -> list[datetime]:
        """When the failed attempts after ``since`` for that name (any case) or from that client were, oldest first.

        A name's count starts afresh after its latest successful login; a client address's does not, so
        one address cannot clear its failures on many names by logging in to one of its own.
        """
        if (name is None) == (client is None):
            raise ValueError("give the name or the client, one of the two")
        if name is not None:
            # After the latest success in the order attempts were made (ids), not by time: two may share a time.
            sql = ("SELECT at FROM login_attempts WHERE ok = 0 AND name = ? AND at > ? AND id > coalesce((SELECT "
                   "max(id) FROM login_attempts WHERE ok = 1 AND name = ?), 0) ORDER BY at, id")
            params: tuple[Any, ...] = (name, _text(since), name)
        else:
            sql = "SELECT at FROM login_attempts WHERE ok = 0 AND client = ? AND at > ? ORDER BY at, id"
            params = (client, _text(since))
        return [_time(r[0]) for r in self._read(sql, params)]


    # -- audit log --------------------------------------------------------------------------------

    def audit(self, action: str, *, user: str | None = None, target: str | None = None, detail: str | None = None,
              client: str | None = None) -> AuditEntry:
        """Add a line to the audit log, timed now (UTC)."""
        at = _text(self.now())
        with self._write() as con:
            cursor = con.execute("INSERT INTO audit_log (at, user, action, target, detail, client) "
                                 "VALUES (?, ?, ?, ?, ?, ?)", (at, user, action, target, detail, client))
        return AuditEntry(id=cast(int, cursor.lastrowid), at=_time(at), user=user, action=action, target=target,
                          detail=detail, client=client)

    def audit_log(self, *, offset: int = 0, limit: int = 50, user: str | None = None,
                  action: str | None = None, through: int | None = None) -> AuditPage:
        """A page of the audit log, newest first, of one user (any case) and/or one action when given.

        ``through`` leaves out the lines written after the one of that id: the pages after the first stay put.
        """
        if offset < 0 or not 1 <= limit <= 1000:
            raise ValueError(f"offset {offset}, limit {limit}: expected offset ≥ 0 and limit from 1 to 1000")
        where: list[str] = [] if through is None else ["id <= ?"]
        params: list[Any] = [] if through is None else [through]
        if user is not None:
            where.append("user = ? COLLATE NOCASE")
            params.append(user)
        if action is not None:
            where.append("action = ?")
            params.append(action)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        with self._connection() as con:
            con.execute("BEGIN")  # one snapshot for the page and its count
            rows = con.execute(f"SELECT id, at, user, action, target, detail, client FROM audit_log{clause} "
                               "ORDER BY id DESC LIMIT ? OFFSET ?", (*params, limit, offset)).fetchall()
            total, newest = con.execute(f"SELECT count(*), max(id) FROM audit_log{clause}", params).fetchone()
            con.execute("COMMIT")
        return AuditPage(entries=tuple(_audit(r) for r in rows), total=total, offset=offset, limit=limit,
                         through=newest)

    # -- studies' results -------------------------------------------------------------------------

    def queue_result(self, study_hash: str, study_name: str, study_yaml: str, run_by: str | None) -> StoredResult:
        """A new run of a study, queued: the next version for its hash (1 for a hash never run)."""
        now = _text(self.now())
        with self._write() as con:
            version = con.execute("SELECT coalesce(max(version), 0) + 1 FROM results WHERE study_hash = ?",
                                  (study_hash,)).fetchone()[0]
            con.execute(f"INSERT INTO results ({_RESULT_COLUMNS}) VALUES (?, ?, ?, ?, 'queued', NULL, NULL, NULL, ?, "
                        "?, ?, NULL)", (study_hash, version, study_name, study_yaml, run_by, now, now))
        found = self.result(study_hash, version)
        assert found is not None
        return found

    def update_result(self, study_hash: str, version: int, *, status: Status | None = None,
                      progress: str | None = None, error: str | None = None,
                      document: str | None = None) -> StoredResult:
        """Record a run's progress; ``done`` or ``failed`` also sets when it finished.

        Raises
        ------
        KeyError
            There is no such run.
        ValueError
            ``status`` is not one of queued, running, done, failed.
        """
        changes, params = status_change(_text(self.now()), status, progress=progress, error=error, document=document)
        with self._write() as con:
            cursor = con.execute(f"UPDATE results SET {changes} WHERE study_hash = ? AND version = ?",
                                 (*params, study_hash, version))
        if cursor.rowcount != 1:
            raise KeyError(f"no result {study_hash} version {version}")
        found = self.result(study_hash, version)
        assert found is not None
        return found

    def result(self, study_hash: str, version: int | None = None, *, document: bool = True) -> StoredResult | None:
        """A study's run by hash and version (its latest version when ``version`` is None), or None.

        ``document=False`` leaves its result.json out (``document`` None): a 20,000-rep org's is tens of
        megabytes, and most reads need only the run's status.
        """
        columns = _RESULT_COLUMNS if document else _BRIEF_COLUMNS
        if version is None:
            rows = self._read(f"SELECT {columns} FROM results WHERE study_hash = ? ORDER BY version DESC "
                              "LIMIT 1", (study_hash,))
        else:
            rows = self._read(f"SELECT {columns} FROM results WHERE study_hash = ? AND version = ?",
                              (study_hash, version))
        return _result(rows[0]) if rows else None

    def versions(self, study_hash: str, *, document: bool = True) -> list[StoredResult]:
        """Every run of one study hash, version 1 first (without result.json when ``document`` is False)."""
        columns = _RESULT_COLUMNS if document else _BRIEF_COLUMNS
        return [_result(r) for r in self._read(f"SELECT {columns} FROM results WHERE study_hash = ? "
                                               "ORDER BY version", (study_hash,))]

    def save_file(self, study_hash: str, version: int, name: str, content: bytes) -> None:
        """Keep one file of a run's answer (the report, the one-pager, the workbook), replacing one of that name."""
        with self._write() as con:
            con.execute("INSERT OR REPLACE INTO result_files (study_hash, version, name, content) VALUES (?, ?, ?, ?)",
                        (study_hash, version, name, content))

    def file(self, study_hash: str, version: int, name: str) -> bytes | None:
        """One file of a run's answer, or None when the run has none of that name."""
        rows = self._read("SELECT content FROM result_files WHERE study_hash = ? AND version = ? AND name = ?",
                          (study_hash, version, name))
        return bytes(rows[0][0]) if rows else None

    def file_names(self, study_hash: str, version: int) -> list[str]:
        """The names of a run's files, sorted."""
        return [r[0] for r in self._read("SELECT name FROM result_files WHERE study_hash = ? AND version = ? "
                                         "ORDER BY name", (study_hash, version))]

    def latest_results(self, status: Status | None = None, *, document: bool = True) -> list[StoredResult]:
        """The latest run of each study hash (the latest with ``status`` when given), newest first.

        Without result.json when ``document`` is False.
        """
        columns = _RESULT_COLUMNS if document else _BRIEF_COLUMNS
        if status is None:
            sql = (f"SELECT {columns} FROM results r WHERE version = (SELECT max(version) FROM results x "
                   "WHERE x.study_hash = r.study_hash) ORDER BY created DESC, study_hash")
            params: tuple[Any, ...] = ()
        else:
            sql = (f"SELECT {columns} FROM results r WHERE status = ? AND version = (SELECT max(version) "
                   "FROM results x WHERE x.study_hash = r.study_hash AND x.status = ?) ORDER BY created DESC, "
                   "study_hash")
            params = (status, status)
        return [_result(r) for r in self._read(sql, params)]

    def finish_result(self, study_hash: str, version: int, document: str, files: dict[str, bytes],
                      progress: str | None = None) -> StoredResult:
        """A running run done: its result.json and its files kept, and its status set to ``done``, in one transaction.

        A run is therefore either ``done`` with everything it wrote, or not done with none of it, whenever
        the server stops.

        Raises
        ------
        KeyError
            There is no such run, or it is not ``running`` (marked ``failed`` meanwhile, when the server
            stopped): nothing is written.
        """
        now = _text(self.now())
        with self._write() as con:
            cursor = con.execute("UPDATE results SET status = 'done', progress = coalesce(?, progress), error = NULL, "
                                 "document = ?, updated = ?, finished = ? WHERE study_hash = ? AND version = ? AND "
                                 "status = 'running'", (progress, document, now, now, study_hash, version))
            if cursor.rowcount != 1:
                raise KeyError(f"no running result {study_hash} version {version}")
            con.executemany("INSERT OR REPLACE INTO result_files (study_hash, version, name, content) "
                            "VALUES (?, ?, ?, ?)", [(study_hash, version, n, c) for n, c in files.items()])
        found = self.result(study_hash, version)
        assert found is not None
        return found

    def fail_unfinished(self, error: str) -> list[StoredResult]:
        """Mark every run still ``queued`` or ``running`` as ``failed`` with ``error``; the runs so marked.

        For a server that starts (or stops) while runs were under way: nothing computes them any more.
        """
        now = _text(self.now())
        with self._write() as con:
            keys = con.execute("SELECT study_hash, version FROM results WHERE status IN ('queued', 'running') "
                               "ORDER BY created, study_hash, version").fetchall()
            con.execute("UPDATE results SET status = 'failed', error = ?, updated = ?, finished = ? "
                        "WHERE status IN ('queued', 'running')", (error, now, now))
        return [found for h, v in keys if (found := self.result(h, v)) is not None]
