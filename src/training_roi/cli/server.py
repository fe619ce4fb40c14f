"""The server's commands: ``serve`` (the dashboard and API) and ``users`` (who may use it).

Registered on the one ``training-roi`` command by :mod:`training_roi.cli`, which imports this
module last; like the rest of the command line, they parse arguments and call :mod:`training_roi.web`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from training_roi.cli import DbOption, JsonOption, _err, _json, _out, _user_errors, app
from training_roi.warehouse.target import DEFAULT_DB

__all__ = ["serve", "serve_demo", "users_app"]


def serve_demo(db: Path, workdir: Path, port: int) -> None:
    """Serve the demo's warehouse and study on the loopback address, signed in as 'demo' with a fresh password."""
    import secrets

    import uvicorn

    from training_roi.web.app import create_app
    from training_roi.web.auth import add_user, change_password
    from training_roi.web.store import Store, default_state_path

    with _user_errors("stopped (Ctrl-C): the dashboard has stopped; the demo's files are complete"):
        store = Store(default_state_path(db))
        password = secrets.token_urlsafe(12)
        if store.user("demo") is None:
            add_user(store, "demo", "analyst", password=password)
        else:
            change_password(store, "demo", password)
        application = create_app(db, store, results=[workdir])
        _out().print(f"\nDashboard: open [bold]http://127.0.0.1:{port}[/] and sign in as [bold]demo[/] with the "
                     "password on the next line (shown once; Ctrl-C stops the server):", highlight=False)
        sys.stdout.write(f"{password}\n")
        sys.stdout.flush()
        uvicorn.run(application, host="127.0.0.1", port=port, log_level="warning")


users_app = typer.Typer(name="users", no_args_is_help=True,
                        help="Who may use the server (`training-roi serve`): add, list, change a role, remove, "
                             "set a password.")
app.add_typer(users_app)

StateOption = Annotated[Path | None, typer.Option(
    "--state", help="the server's state file; default: the warehouse's path with .server.sqlite appended")]
StdinOption = Annotated[bool, typer.Option("--password-stdin", help="read the password from the first line of "
                                                                    "standard input instead of asking")]
_USERS_STOPPED = ("stopped (Ctrl-C): a change to the server's users is made whole or not at all; "
                  "`training-roi users list` shows which")


def _password(from_stdin: bool) -> str:
    """The password: the first line of standard input, or typed twice at a hidden prompt."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("password", hide_input=True, confirmation_prompt=True))


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="the user's name (letters, digits, . _ @ + -)")],
    role: Annotated[str, typer.Option(help="viewer (aggregates only), analyst (everything, runs studies) or admin "
                                           "(also users and ingest)")],
    db: DbOption = DEFAULT_DB,
    state: StateOption = None,
    password_stdin: StdinOption = False,
) -> None:
    """Add a user and print their API token, once."""
    from training_roi.web.auth import TOKEN_SHOWN_ONCE, add_user, check_password
    from training_roi.web.store import Store, state_path, validate_user

    with _user_errors(_USERS_STOPPED):
        validate_user(name, role)
        path = state_path(db, state)
        password = _password(True) if password_stdin else None
        if password is not None:
            check_password(password)
        user, token = add_user(Store(path), name, role, password=password)
    console = _out()
    console.print(f"added {user.name} ({user.role}) to {path}", highlight=False, soft_wrap=True)
    console.print(TOKEN_SHOWN_ONCE, highlight=False, soft_wrap=True)
    sys.stdout.write(f"{token}\n")
    if password is None:
        console.print(f"{user.name} has no password for the pages yet: `training-roi users password {user.name}` "
                      "sets one", highlight=False, soft_wrap=True)


@users_app.command("list")
def users_list(db: DbOption = DEFAULT_DB, state: StateOption = None, as_json: JsonOption = False) -> None:
    """List the users: role, whether a password is set, API tokens and when one was last used."""
    from datetime import datetime

    from rich.table import Table

    from training_roi.web.store import Store, state_path

    def when(moment: datetime | None) -> str:
        return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "never"

    with _user_errors(_USERS_STOPPED):
        store = Store(state_path(db, state), create=False)
        users = [(u, store.tokens(u.name)) for u in store.users()]
    if as_json:
        _json([{"name": u.name, "role": u.role, "password": u.password_hash is not None, "tokens": len(tokens),
                "token_last_used": max((t.last_used.isoformat() for t in tokens if t.last_used), default=None),
                "created": u.created.isoformat(), "disabled": u.disabled} for u, tokens in users])
        return
    table = Table("name", "role", "password", "API tokens", "token last used", "added")
    for u, tokens in users:
        table.add_row(u.name + (" (disabled)" if u.disabled else ""), u.role,
                      "set" if u.password_hash else "not set", f"{len(tokens):,}",
                      when(max((t.last_used for t in tokens if t.last_used), default=None)), when(u.created))
    _out().print(table if users else "no users yet: `training-roi users add NAME --role admin` adds one")


@users_app.command("remove")
def users_remove(name: Annotated[str, typer.Argument(help="the user to remove")], db: DbOption = DEFAULT_DB,
                 state: StateOption = None) -> None:
    """Remove a user: their API tokens and login sessions stop working; the audit log keeps their name."""
    from training_roi._format import plural
    from training_roi.web.auth import remove_user
    from training_roi.web.store import Store, state_path

    with _user_errors(_USERS_STOPPED):
        user, tokens = remove_user(Store(state_path(db, state), create=False), name)
    _out().print(f"removed {user.name} ({user.role}): {plural(tokens, 'API token')} and every login session of "
                 "theirs no longer work", highlight=False, soft_wrap=True)


@users_app.command("role")
def users_role(name: Annotated[str, typer.Argument(help="the user whose role to change")],
               role: Annotated[str, typer.Option(help="viewer, analyst or admin")],
               db: DbOption = DEFAULT_DB, state: StateOption = None) -> None:
    """Give a user another role, from their next request on; the last admin keeps theirs."""
    from training_roi.web.auth import change_role
    from training_roi.web.store import Store, state_path

    with _user_errors(_USERS_STOPPED):
        user, before = change_role(Store(state_path(db, state), create=False), name, role)
    _out().print(f"{user.name} was {before} and is now {user.role}", highlight=False, soft_wrap=True)


@users_app.command("password")
def users_password(name: Annotated[str, typer.Argument(help="the user whose password to set")],
                   db: DbOption = DEFAULT_DB, state: StateOption = None,
                   password_stdin: StdinOption = False) -> None:
    """Set a user's password for the pages (asked twice, hidden); their open login sessions end."""
    from training_roi._format import plural
    from training_roi.web.auth import change_password
    from training_roi.web.store import Store, state_path

    with _user_errors(_USERS_STOPPED):
        store = Store(state_path(db, state), create=False)
        store.require_user(name)
        user, ended = change_password(store, name, _password(password_stdin))
    _out().print(f"password set for {user.name}; {plural(ended, 'open login session')} ended", highlight=False,
                 soft_wrap=True)


_LOOPBACK = ("127.0.0.1", "::1", "localhost")


@app.command()
def serve(
    db: DbOption = DEFAULT_DB,
    host: Annotated[str, typer.Option(help="the address to listen on; 127.0.0.1 serves this machine only")] = (
        "127.0.0.1"),
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    state: StateOption = None,
    results: Annotated[list[Path] | None, typer.Option(
        "--results", help="a folder `report` wrote (its result.json and files), shown as a program (repeat)")] = None,
    secure_cookies: Annotated[bool, typer.Option(
        help="mark the session cookie Secure (set it when a proxy in front ends TLS)")] = False,
    max_archive_mib: Annotated[int, typer.Option(
        min=1, help="the largest zip archive an admin may send to be ingested, in MiB")] = 1024,
) -> None:
    """Start the dashboard and its API over the warehouse, until Ctrl-C: http://HOST:PORT, /api/v1."""
    import uvicorn

    from training_roi.web.app import create_app
    from training_roi.web.archive import MIB, Limits
    from training_roi.web.store import Store, state_path

    with _user_errors("stopped (Ctrl-C): the server has stopped; an ingest it was running is stopped as Ctrl-C "
                      "stops `training-roi ingest`"):
        path = state_path(db, state)
        store = Store(path)
        file = Path(db.split("://", 1)[1].split("?", 1)[0] if db.lower().startswith("duckdb://") else db)
        application = create_app(file, store, results=list(results or []), secure_cookies=secure_cookies,
                                 archive_limits=Limits(archive_bytes=max_archive_mib * MIB))
        console = _out()
        if not store.users():
            console.print("no users yet: nobody can sign in until "
                          f"`training-roi users add NAME --role admin --db {db}` adds one", highlight=False)
        if host not in _LOOPBACK and not secure_cookies:
            _err().print(f"warning: serving on {host} over plain HTTP: passwords, session cookies and API tokens "
                         "travel in the clear. Put a proxy that ends TLS in front and pass --secure-cookies.",
                         highlight=False)
        console.print(f"serving {db} (state {path}) on http://{host}:{port} — Ctrl-C stops", highlight=False)
        uvicorn.run(application, host=host, port=port, log_level="warning")
