"""The server's state file: where it lives, what it keeps (hashes, never secrets), versions, concurrent writers."""

from __future__ import annotations

import hashlib
import sqlite3
import stat
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError

from tests.web.state import CHEAP, Clock, file_bytes
from training_roi.errors import AccountError, StateError
from training_roi.web import roster
from training_roi.web.store import SCHEMA_VERSION, Store, default_state_path, state_path


def test_the_state_file_sits_beside_the_warehouse(tmp_path: Path):
    assert default_state_path(Path("roi.duckdb")) == Path("roi.duckdb.server.sqlite")
    assert default_state_path(Path("data/org.duckdb")) == Path("data/org.duckdb.server.sqlite")
    (tmp_path / "wh.duckdb").touch()
    assert state_path(str(tmp_path / "wh.duckdb")) == tmp_path / "wh.duckdb.server.sqlite"
    assert state_path(f"duckdb://{tmp_path / 'wh.duckdb'}?read_only=true") == tmp_path / "wh.duckdb.server.sqlite"
    assert state_path("postgres://u@h/db", tmp_path / "s.sqlite") == tmp_path / "s.sqlite"


def test_a_missing_warehouse_or_a_remote_one_without_state_is_refused(tmp_path: Path):
    with pytest.raises(StateError, match=r"no warehouse at .*nope\.duckdb"):
        state_path(str(tmp_path / "nope.duckdb"))
    with pytest.raises(StateError, match="--state"):
        state_path("postgres://u@h/db")


def test_the_file_is_in_wal_mode_with_its_schema_version_and_readable_by_its_owner_only(store: Store):
    con = sqlite3.connect(store.path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("SELECT version FROM schema_version").fetchall() == [(1,)]
    con.close()
    if sys.platform != "win32":
        assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_a_file_written_by_a_newer_version_or_not_sqlite_is_refused(tmp_path: Path, store: Store):
    con = sqlite3.connect(store.path)
    con.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    con.commit()
    con.close()
    with pytest.raises(StateError, match="newer"):
        Store(store.path, hasher=CHEAP)
    junk = tmp_path / "junk.sqlite"
    junk.write_text("name,role\nana,admin\n" * 100, encoding="utf-8")
    with pytest.raises(StateError, match=r"junk\.sqlite cannot be opened"):
        Store(junk, hasher=CHEAP)
    with pytest.raises(StateError, match="no server state"):
        Store(tmp_path / "absent.sqlite", create=False)
    assert not (tmp_path / "absent.sqlite").exists()


def test_a_newer_file_is_left_as_it_was_and_a_folder_is_refused(tmp_path: Path):
    newer = tmp_path / "newer.sqlite"
    con = sqlite3.connect(newer)
    con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    con.execute("INSERT INTO schema_version VALUES (2)")
    con.commit()
    con.close()
    with pytest.raises(StateError, match="schema version 2"):
        Store(newer, hasher=CHEAP)
    con = sqlite3.connect(newer)
    assert con.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall() == [("schema_version",)]
    con.close()
    with pytest.raises(StateError, match="is a folder"):
        Store(tmp_path, hasher=CHEAP)


def test_the_password_is_an_argon2id_hash_that_argon2_itself_verifies(store: Store):
    store.add_user("ana", "analyst", password="correct horse battery")
    stored = store.user("ana").password_hash
    assert stored.startswith("$argon2id$")
    assert PasswordHasher().verify(stored, "correct horse battery")
    with pytest.raises(VerifyMismatchError):
        PasswordHasher().verify(stored, "correct horse batterz")
    assert b"correct horse battery" not in file_bytes(store)


def test_the_product_hashes_with_argon2_cffi_defaults(tmp_path: Path):
    # RFC 9106's second recommended option, as argon2-cffi ships it: 64 MiB, 3 passes, 4 lanes.
    product = Store(tmp_path / "s.sqlite")
    product.add_user("ana", "admin", password="a long passphrase")
    assert product.user("ana").password_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$")


def test_a_token_is_kept_only_as_its_sha256(store: Store):
    store.add_user("ana", "viewer")
    token = store.add_token("ana")
    everything = file_bytes(store)
    assert token.encode() not in everything
    assert hashlib.sha256(token.encode()).hexdigest().encode() in everything
    assert len(token) >= 43  # 32 random bytes, base64url


def test_a_session_id_is_kept_only_as_its_sha256(store: Store):
    store.add_user("ana", "viewer")
    session_id, session = store.open_session("ana", timedelta(hours=8))
    everything = file_bytes(store)
    assert session_id.encode() not in everything
    assert hashlib.sha256(session_id.encode()).hexdigest().encode() in everything
    assert store.session(session_id).csrf_token == session.csrf_token
    assert store.session(session_id + "x") is None


def test_names_are_unique_whatever_their_case(store: Store):
    store.add_user("Ana", "viewer")
    with pytest.raises(AccountError, match="'Ana' exists already"):
        store.add_user("ana", "admin")
    assert store.user("ANA").name == "Ana"
    assert [u.name for u in store.users()] == ["Ana"]


@pytest.mark.parametrize("name", ["", " ana", "ana smith", "-ana", "a" * 65, "ana\n"])
def test_a_bad_name_is_refused(store: Store, name: str):
    with pytest.raises(AccountError, match="user name"):
        store.add_user(name, "viewer")
    assert store.users() == []


def test_a_bad_role_is_refused(store: Store):
    with pytest.raises(AccountError, match="expected one of viewer, analyst, admin"):
        store.add_user("ana", "superuser")


def test_removing_a_user_ends_their_tokens_and_sessions_and_the_audit_keeps_their_name(store: Store):
    store.add_user("ana", "analyst")
    token = store.add_token("ana")
    session_id, _ = store.open_session("ana", timedelta(hours=1))
    store.audit("view", user="ana", target="/programs")
    ana = store.user("ana")
    assert roster.delete_user(store, "ana") == (ana, 1)
    assert store.user_for_token(token) is None
    assert store.session(session_id) is None
    assert [e.user for e in store.audit_log().entries] == ["ana"]
    with pytest.raises(AccountError, match="no user 'ana'"):
        roster.delete_user(store, "ana")


def test_a_token_notes_when_it_was_last_used(store: Store, clock: Clock):
    store.add_user("ana", "viewer")
    token = store.add_token("ana")
    assert store.tokens("ana")[0].last_used is None
    clock.advance(minutes=42)
    assert store.user_for_token(token).name == "ana"
    assert store.tokens("ana")[0].last_used == datetime(2025, 3, 14, 9, 42, tzinfo=UTC)
    # Noted to the minute: a use 59 seconds later is not written, one a minute after the last noted is.
    clock.advance(seconds=59)
    store.user_for_token(token)
    assert store.tokens("ana")[0].last_used == datetime(2025, 3, 14, 9, 42, tzinfo=UTC)
    clock.advance(seconds=1)
    store.user_for_token(token)
    assert store.tokens("ana")[0].last_used == datetime(2025, 3, 14, 9, 43, tzinfo=UTC)


def test_result_versions_increase_per_study_hash(store: Store, clock: Clock):
    a1 = store.queue_result("aaaa", "Sales Excellence", "name: a\n", "ana")
    clock.advance(minutes=1)
    b1 = store.queue_result("bbbb", "Onboarding", "name: b\n", "ana")
    clock.advance(minutes=1)
    a2 = store.queue_result("aaaa", "Sales Excellence", "name: a\n", "bo")
    assert (a1.version, b1.version, a2.version) == (1, 1, 2)
    assert [r.version for r in store.versions("aaaa")] == [1, 2]
    assert [(r.study_hash, r.version) for r in store.latest_results()] == [("aaaa", 2), ("bbbb", 1)]
    assert store.result("aaaa").version == 2
    assert store.result("aaaa", 1).run_by == "ana"
    assert store.result("cccc") is None


def test_a_run_moves_from_queued_to_done_with_its_document(store: Store, clock: Clock):
    run = store.queue_result("aaaa", "S", "name: S\n", "ana")
    assert (run.status, run.finished, run.document) == ("queued", None, None)
    clock.advance(seconds=5)
    store.update_result("aaaa", 1, status="running", progress="isolating the effect")
    clock.advance(seconds=30)
    done = store.update_result("aaaa", 1, status="done", progress="done", document='{"roi": 1.5}')
    assert done.status == "done" and done.document == '{"roi": 1.5}' and done.progress == "done"
    assert done.finished - done.created == timedelta(seconds=35)
    # A later run that failed does not hide the latest one that was done.
    store.queue_result("aaaa", "S", "name: S\n", "ana")
    store.update_result("aaaa", 2, status="failed", error="the warehouse has no LMS data")
    assert store.result("aaaa").status == "failed"
    assert [(r.version, r.status) for r in store.latest_results(status="done")] == [(1, "done")]
    with pytest.raises(KeyError):
        store.update_result("aaaa", 3, status="running")
    with pytest.raises(ValueError, match="status"):
        store.update_result("aaaa", 1, status="finished")  # type: ignore[arg-type]


def test_two_threads_writing_the_audit_log_lose_nothing(store: Store):
    per_thread = 150
    start = threading.Barrier(2)

    def write(who: str) -> None:
        start.wait()
        for i in range(per_thread):
            store.audit("view", user=who, target=f"/teams/{i}")

    threads = [threading.Thread(target=write, args=(who,)) for who in ("ana", "bo")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    con = sqlite3.connect(store.path)
    counts = dict(con.execute("SELECT user, count(*) FROM audit_log GROUP BY user").fetchall())
    con.close()
    assert counts == {"ana": per_thread, "bo": per_thread}
    assert store.audit_log(user="ana").total == per_thread


def test_two_threads_queueing_the_same_study_never_share_a_version(store: Store):
    per_thread = 25
    start = threading.Barrier(2)

    def queue() -> None:
        start.wait()
        for _ in range(per_thread):
            store.queue_result("aaaa", "S", "name: S\n", None)

    threads = [threading.Thread(target=queue) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.version for r in store.versions("aaaa")] == list(range(1, 2 * per_thread + 1))


def test_the_audit_log_reads_by_page_newest_first(store: Store, clock: Clock):
    for i in range(7):
        clock.advance(seconds=1)
        store.audit("view" if i % 2 else "login", user="Ana" if i < 5 else None, target=str(i), client="10.0.0.1")
    first = store.audit_log(limit=3)
    assert [e.target for e in first.entries] == ["6", "5", "4"] and first.total == 7
    assert [e.target for e in store.audit_log(offset=6, limit=3).entries] == ["0"]
    assert first.entries[0].at == datetime(2025, 3, 14, 9, 0, 7, tzinfo=UTC)
    assert first.entries[0].user is None and first.entries[0].client == "10.0.0.1"
    mine = store.audit_log(user="ana", action="view")
    assert [e.target for e in mine.entries] == ["3", "1"] and mine.total == 2
    with pytest.raises(ValueError, match="limit"):
        store.audit_log(limit=0)


def test_times_are_kept_in_utc_whatever_the_clock_zone(tmp_path: Path):
    from zoneinfo import ZoneInfo

    noon_in_paris = datetime(2025, 7, 1, 12, 0, tzinfo=ZoneInfo("Europe/Paris"))  # summer time: UTC+2
    paris = Store(tmp_path / "s.sqlite", hasher=CHEAP, clock=lambda: noon_in_paris)
    entry = paris.audit("login", user="ana")
    assert entry.at == datetime(2025, 7, 1, 10, 0, tzinfo=UTC)
    assert paris.audit_log().entries[0].at.tzinfo == UTC
    con = sqlite3.connect(paris.path)
    assert con.execute("SELECT at FROM audit_log").fetchone()[0] == "2025-07-01T10:00:00.000000Z"
    con.close()


def test_a_run_is_done_with_its_files_at_once_and_only_while_running(store: Store, clock: Clock):
    store.queue_result("aaaa", "S", "name: S\n", "ana")
    with pytest.raises(KeyError, match="no running result"):  # queued, not running: nothing written
        store.finish_result("aaaa", 1, '{"roi": 1}', {"report.html": b"<p>1</p>"})
    assert store.file_names("aaaa", 1) == [] and store.result("aaaa", 1).status == "queued"
    store.update_result("aaaa", 1, status="running", progress="valuing each window")
    clock.advance(seconds=12)
    done = store.finish_result("aaaa", 1, '{"roi": 1}', {"report.html": b"<p>1</p>", "summary.pdf": b"%PDF-1.7"},
                               progress="done in 12.0 seconds")
    assert (done.status, done.document, done.progress, done.error) == ("done", '{"roi": 1}', "done in 12.0 seconds",
                                                                       None)
    assert done.finished - done.created == timedelta(seconds=12)
    assert store.file_names("aaaa", 1) == ["report.html", "summary.pdf"] and store.file("aaaa", 1, "summary.pdf") == \
        b"%PDF-1.7"
    with pytest.raises(KeyError):  # done already: a second finish changes nothing
        store.finish_result("aaaa", 1, '{"roi": 2}', {})
    assert store.result("aaaa", 1).document == '{"roi": 1}'


def test_unfinished_runs_are_marked_failed_and_finished_ones_left_alone(store: Store):
    for h in ("aaaa", "bbbb", "cccc", "dddd"):
        store.queue_result(h, h, f"name: {h}\n", "ana")
    store.update_result("bbbb", 1, status="running")
    store.update_result("cccc", 1, status="done", document="{}")
    store.update_result("dddd", 1, status="failed", error="no cost line names the program")
    marked = store.fail_unfinished("the server stopped during the run: run the study again")
    assert [(r.study_hash, r.status) for r in marked] == [("aaaa", "failed"), ("bbbb", "failed")]
    assert [store.result(h).error for h in ("aaaa", "bbbb", "cccc", "dddd")] == [
        "the server stopped during the run: run the study again"] * 2 + [None, "no cost line names the program"]
    assert store.result("cccc").status == "done" and store.fail_unfinished("again") == []


def test_each_thread_keeps_one_connection_and_close_ends_them_all(store: Store):
    store.add_user("ana", "viewer")
    seen: dict[str, list[int]] = {}

    def look(name: str) -> None:
        for _ in range(3):
            with store._connection() as con:
                seen.setdefault(name, []).append(id(con))
        store.user("ana")

    threads = [threading.Thread(target=look, args=(f"t{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(len(set(ids)) == 1 for ids in seen.values())  # a thread reuses its connection
    assert len({ids[0] for ids in seen.values()}) == 3  # no two threads share one
    kept = list(store._connections)
    store.close()
    with pytest.raises(sqlite3.ProgrammingError):  # closed, every one of them
        kept[0].execute("SELECT 1")
    assert store.user("ana") is not None  # and the store opens a new one when used again


def test_a_transaction_an_error_left_open_is_rolled_back_on_the_kept_connection(store: Store):
    def half_written() -> None:
        with store._write() as con:
            con.execute("INSERT INTO audit_log (at, action) VALUES ('2025-01-01T00:00:00.000000Z', 'half')")
            raise RuntimeError("stopped half-way")

    def left_open() -> None:
        with store._connection() as con:
            con.execute("BEGIN")
            raise RuntimeError("stopped inside a transaction")

    with pytest.raises(RuntimeError):
        half_written()
    with pytest.raises(RuntimeError):
        left_open()
    with store._connection() as con:
        assert not con.in_transaction
    assert store.audit_log().total == 0
    assert store.audit("whole").id >= 1  # the next write is not caught in the abandoned transaction


def test_the_lists_of_runs_never_read_the_documents(store: Store):
    store.queue_result("a" * 16, "s", "name: s", "ana")
    with store._connection() as con:
        plan = " ".join(str(row[-1]) for row in con.execute(
            "EXPLAIN QUERY PLAN SELECT study_hash, version, study_name, study_yaml, status, progress, error, run_by, "
            "created, updated, finished FROM results"))
    assert "COVERING INDEX results_brief" in plan  # the rows (and their megabytes of result.json) are not read
