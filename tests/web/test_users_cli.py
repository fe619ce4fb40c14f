"""`training-roi users`: the token printed once authenticates; bad input is one line and exit status 2."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from training_roi.cli import app
from training_roi.web import auth
from training_roi.web.store import Store

runner = CliRunner()
TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$", re.MULTILINE)  # 32 random bytes in base64url, on a line of its own


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "roi.duckdb"
    path.touch()  # the state file goes beside a warehouse that exists; its content is not read
    return path


def _users(*args: str, db: Path, stdin: str | None = None):
    return runner.invoke(app, ["users", *args, "--db", str(db)], input=stdin)


def test_add_prints_a_token_once_that_then_authenticates(db: Path):
    result = _users("add", "ana", "--role", "analyst", db=db)
    assert result.exit_code == 0, result.stderr
    tokens = TOKEN.findall(result.stdout)
    assert len(tokens) == 1 and result.stdout.count(tokens[0]) == 1
    assert "will not be shown again" in result.stdout
    store = Store(db.with_name("roi.duckdb.server.sqlite"), create=False)
    user = auth.token_user(store, tokens[0])
    assert (user.name, user.role) == ("ana", "analyst")
    assert auth.token_user(store, tokens[0][::-1]) is None


def test_a_bad_role_is_one_line_and_exit_2_and_writes_nothing(db: Path):
    result = _users("add", "ana", "--role", "superuser", db=db)
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: --role superuser: expected one of viewer, analyst, admin"
    assert "Traceback" not in result.stdout + result.stderr
    assert not db.with_name("roi.duckdb.server.sqlite").exists()


def test_a_name_taken_in_any_case_is_one_line_and_exit_2(db: Path):
    assert _users("add", "ana", "--role", "viewer", db=db).exit_code == 0
    result = _users("add", "ANA", "--role", "admin", db=db)
    assert result.exit_code == 2
    assert "user 'ana' exists already" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert TOKEN.search(result.stdout) is None


def test_a_missing_warehouse_is_one_line_and_exit_2(tmp_path: Path):
    result = _users("add", "ana", "--role", "viewer", db=tmp_path / "nope.duckdb")
    assert result.exit_code == 2
    assert "no warehouse at" in result.stderr and "nope.duckdb" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_named_state_file_needs_no_warehouse(tmp_path: Path):
    state = tmp_path / "elsewhere" / "server.sqlite"
    result = runner.invoke(app, ["users", "add", "ana", "--role", "admin", "--db", "postgres://u@h/db",
                                 "--state", str(state)])
    assert result.exit_code == 0, result.stderr
    assert Store(state, create=False).user("ana").role == "admin"


def test_a_password_from_stdin_logs_in(db: Path):
    result = _users("add", "ana", "--role", "admin", "--password-stdin", db=db, stdin="a long passphrase\n")
    assert result.exit_code == 0, result.stderr
    store = Store(db.with_name("roi.duckdb.server.sqlite"), create=False)
    assert store.user("ana").password_hash.startswith("$argon2id$")
    assert auth.login(store, "ana", "a long passphrase").ok
    assert not auth.login(store, "ana", "a long passphrase\n").ok


def test_password_asks_twice_and_a_short_one_is_refused(db: Path):
    assert _users("add", "ana", "--role", "viewer", db=db).exit_code == 0
    result = _users("password", "ana", db=db, stdin="first try\nsecond try\nthe real one\nthe real one\n")
    assert result.exit_code == 0, result.stderr
    assert "do not match" in result.stdout + result.stderr
    assert "the real one" not in result.stdout  # typed hidden
    store = Store(db.with_name("roi.duckdb.server.sqlite"), create=False)
    assert auth.verify_password(store, "ana", "the real one") is not None
    assert auth.verify_password(store, "ana", "first try") is None
    short = _users("password", "ana", "--password-stdin", db=db, stdin="short\n")
    assert short.exit_code == 2 and "at least 8" in short.stderr


def test_remove_stops_the_token_and_list_shows_who_is_left(db: Path):
    token = TOKEN.findall(_users("add", "ana", "--role", "analyst", db=db).stdout)[0]
    assert _users("add", "bo", "--role", "viewer", db=db).exit_code == 0
    removed = _users("remove", "ana", db=db)
    assert removed.exit_code == 0 and "removed ana (analyst): 1 API token" in removed.stdout
    store = Store(db.with_name("roi.duckdb.server.sqlite"), create=False)
    assert auth.token_user(store, token) is None
    listed = json.loads(_users("list", "--json", db=db).stdout)
    assert [(u["name"], u["role"], u["password"], u["tokens"]) for u in listed] == [("bo", "viewer", False, 1)]
    again = _users("remove", "ana", db=db)
    assert again.exit_code == 2 and "no user 'ana'" in again.stderr


def test_list_before_any_user_says_how_to_add_one(db: Path):
    result = _users("list", db=db)
    assert result.exit_code == 2
    assert "users add NAME --role admin" in result.stderr


def test_role_changes_a_role_but_never_the_last_admins(db: Path):
    assert _users("add", "ana", "--role", "admin", db=db).exit_code == 0
    assert _users("add", "bo", "--role", "viewer", db=db).exit_code == 0
    last = _users("role", "ana", "--role", "analyst", db=db)
    assert last.exit_code == 2 and "ana is the last admin" in last.stderr
    assert len(last.stderr.strip().splitlines()) == 1
    assert _users("remove", "ana", db=db).exit_code == 2
    promoted = _users("role", "BO", "--role", "admin", db=db)
    assert promoted.exit_code == 0 and "bo was viewer and is now admin" in promoted.stdout
    assert _users("role", "ana", "--role", "analyst", db=db).exit_code == 0
    listed = json.loads(_users("list", "--json", db=db).stdout)
    assert [(u["name"], u["role"]) for u in listed] == [("ana", "analyst"), ("bo", "admin")]
    store = Store(db.with_name("roi.duckdb.server.sqlite"), create=False)
    assert [(e.action, e.user, e.target, e.detail) for e in store.audit_log(action="role_changed").entries] == [
        ("role_changed", None, "ana", "admin → analyst"), ("role_changed", None, "bo", "viewer → admin")]
    bad = _users("role", "bo", "--role", "owner", db=db)
    assert bad.exit_code == 2 and "expected one of viewer, analyst, admin" in bad.stderr
