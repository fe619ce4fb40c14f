"""Roles and the checks: passwords, tokens, sessions, CSRF, the login throttle — on a clock the tests move."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from tests.web.state import CHEAP, Clock, file_bytes
from training_roi.errors import AccountError
from training_roi.web import auth
from training_roi.web.store import Store

PASSWORD = "correct horse battery"

# The table of who sees what, written out by hand: viewers aggregates only; analysts
# everything read-only plus running studies; admins also users and ingest.
EXPECTED = {
    "viewer": {"read_aggregates"},
    "analyst": {"read_aggregates", "read_people", "run_studies"},
    "admin": {"read_aggregates", "read_people", "run_studies", "manage_users", "ingest"},
}


@pytest.fixture
def ana(store: Store):
    return store.add_user("ana", "analyst", password=PASSWORD)


@pytest.mark.parametrize("role", sorted(EXPECTED))
@pytest.mark.parametrize("permission", sorted(EXPECTED["admin"]))
def test_each_role_may_do_what_the_table_says(role: str, permission: str):
    assert auth.allowed(role, permission) is (permission in EXPECTED[role])


def test_a_viewer_never_reads_people():
    assert not auth.allowed("viewer", "read_people")


def test_an_unknown_role_or_permission_is_an_error_not_a_quiet_answer():
    with pytest.raises(ValueError, match="role 'root'"):
        auth.allowed("root", "read_aggregates")
    with pytest.raises(ValueError, match="permission 'read_everything'"):
        auth.allowed("admin", "read_everything")


def test_the_right_password_verifies_and_a_wrong_one_does_not(store: Store, ana):
    assert auth.verify_password(store, "ana", PASSWORD).name == "ana"
    assert auth.verify_password(store, "ANA", PASSWORD).name == "ana"
    assert auth.verify_password(store, "ana", PASSWORD + " ") is None
    assert auth.verify_password(store, "ana", "") is None
    assert auth.verify_password(store, "nobody", PASSWORD) is None


def test_no_password_set_or_a_disabled_user_never_verifies(store: Store, ana):
    store.add_user("bo", "viewer")
    assert auth.verify_password(store, "bo", "") is None
    store.set_disabled("ana")
    assert auth.verify_password(store, "ana", PASSWORD) is None


def test_a_hash_made_with_weaker_parameters_is_replaced_on_login(tmp_path: Path, clock: Clock):
    path = tmp_path / "s.sqlite"
    Store(path, hasher=CHEAP, clock=clock).add_user("ana", "viewer", password=PASSWORD)
    stronger = Store(path, hasher=PasswordHasher(time_cost=2, memory_cost=16, parallelism=1), clock=clock)
    assert "m=8,t=1,p=1" in stronger.user("ana").password_hash
    assert auth.verify_password(stronger, "ana", PASSWORD) is not None
    rehashed = stronger.user("ana").password_hash
    assert "$argon2id$v=19$m=16,t=2,p=1$" in rehashed
    assert PasswordHasher().verify(rehashed, PASSWORD)


def test_a_token_authenticates_and_a_wrong_one_does_not(store: Store, ana):
    user, token = auth.add_user(store, "bo", "viewer")
    assert auth.token_user(store, token) == user
    assert auth.token_user(store, token[:-1]) is None
    assert auth.token_user(store, "") is None
    assert auth.token_user(store, None) is None
    store.set_disabled("bo")
    assert auth.token_user(store, token) is None


@pytest.mark.parametrize(("header", "token"), [
    ("Bearer abc.DEF-123_", "abc.DEF-123_"), ("bearer abc", "abc"), ("  Bearer   abc  ", "abc"),
    ("Basic YW5hOnB3", None), ("Bearer", None), ("Bearer a b", None), ("", None), (None, None),
])
def test_the_bearer_header_is_read(header: str | None, token: str | None):
    assert auth.bearer_token(header) == token


def test_five_failures_throttle_the_sixth_attempt_even_with_the_right_password(store: Store, clock: Clock, ana):
    first = clock()
    for _ in range(5):
        assert not auth.login(store, "ana", "wrong password", client="10.0.0.9").ok
        clock.advance(minutes=1)
    refused = auth.login(store, "ana", PASSWORD, client="10.0.0.9")
    # The oldest of the five failures (09:00) leaves the 15-minute window at 09:15.
    assert not refused.ok and refused.session_id is None
    assert refused.retry_at == first + timedelta(minutes=15) == datetime(2025, 3, 14, 9, 15, tzinfo=UTC)
    assert "2025-03-14 09:15 UTC" in refused.message
    clock.moment = refused.retry_at - timedelta(seconds=1)
    assert not auth.login(store, "ana", PASSWORD, client="10.0.0.9").ok
    clock.moment = refused.retry_at
    allowed = auth.login(store, "ana", PASSWORD, client="10.0.0.9")
    assert allowed.ok and allowed.user.name == "ana"


def test_the_time_to_try_again_is_never_too_early(store: Store, clock: Clock, ana):
    clock.advance(seconds=30)
    for _ in range(5):
        auth.login(store, "ana", "wrong")
    refused = auth.login(store, "ana", PASSWORD)
    # Allowed from 09:15:30; the message, to the minute, says 09:16 rather than 09:15.
    assert refused.retry_at == datetime(2025, 3, 14, 9, 15, 30, tzinfo=UTC)
    assert "try again after 2025-03-14 09:16 UTC" in refused.message


def test_the_throttle_counts_a_name_in_any_case_from_any_address(store: Store, clock: Clock, ana):
    for i in range(5):
        auth.login(store, "ANA" if i % 2 else "ana", "wrong", client=f"10.0.0.{i}")
    assert auth.throttled_until(store, "Ana", "192.168.1.1") == clock() + timedelta(minutes=15)
    assert auth.throttled_until(store, "bo", "192.168.1.1") is None


def test_the_throttle_counts_one_address_across_names(store: Store, clock: Clock, ana):
    for name in ("a1", "a2", "a3", "a4", "a5"):
        auth.login(store, name, "wrong", client="10.0.0.9")
        clock.advance(seconds=10)
    assert not auth.login(store, "ana", PASSWORD, client="10.0.0.9").ok
    assert auth.login(store, "ana", PASSWORD, client="10.0.0.10").ok


def test_four_failures_do_not_throttle_and_a_login_starts_the_name_count_afresh(store: Store, clock: Clock, ana):
    for _ in range(4):
        auth.login(store, "ana", "wrong")
    assert auth.login(store, "ana", PASSWORD).ok
    for _ in range(4):
        auth.login(store, "ana", "wrong")
    assert auth.throttled_until(store, "ana") is None  # 8 failures in the window, 4 since the login
    auth.login(store, "ana", "wrong")
    assert auth.throttled_until(store, "ana") == clock() + timedelta(minutes=15)


def test_refused_attempts_do_not_extend_the_throttle(store: Store, clock: Clock, ana):
    for _ in range(5):
        auth.login(store, "ana", "wrong")
    until = auth.throttled_until(store, "ana")
    for _ in range(20):
        clock.advance(seconds=30)
        auth.login(store, "ana", "wrong")
    assert auth.throttled_until(store, "ana") == until


def test_a_session_lasts_eight_hours(store: Store, clock: Clock, ana):
    done = auth.login(store, "ana", PASSWORD, client="10.0.0.9")
    assert done.session.expires - done.session.created == timedelta(hours=8)
    assert done.session_id.encode() not in file_bytes(store)
    clock.advance(hours=8, seconds=-1)
    assert auth.session_for(store, done.session_id).user.name == "ana"
    clock.advance(seconds=1)
    assert auth.session_for(store, done.session_id) is None
    assert auth.session_for(store, "not-a-session") is None
    assert auth.session_for(store, None) is None


def test_logout_ends_the_session(store: Store, ana):
    done = auth.login(store, "ana", PASSWORD)
    assert auth.logout(store, done.session_id)
    assert auth.session_for(store, done.session_id) is None
    assert not auth.logout(store, done.session_id)


def test_a_new_password_ends_the_open_sessions(store: Store, ana):
    done = auth.login(store, "ana", PASSWORD)
    user, ended = auth.change_password(store, "ana", "another long one")
    assert ended == 1 and auth.session_for(store, done.session_id) is None
    assert auth.verify_password(store, "ana", PASSWORD) is None
    assert auth.verify_password(store, "ana", "another long one") == user


def test_csrf_accepts_only_the_sessions_own_token(store: Store, ana):
    mine = auth.login(store, "ana", PASSWORD).session
    other = auth.login(store, "ana", PASSWORD).session
    assert mine.csrf_token != other.csrf_token
    assert auth.csrf_ok(mine, mine.csrf_token)
    assert not auth.csrf_ok(mine, other.csrf_token)
    assert not auth.csrf_ok(mine, mine.csrf_token[:-1])
    assert not auth.csrf_ok(mine, "")
    assert not auth.csrf_ok(mine, None)
    assert not auth.csrf_ok(None, mine.csrf_token)


def test_the_audit_log_says_who_tried_what_from_where(store: Store, clock: Clock, ana):
    for _ in range(5):
        auth.login(store, "ana", "wrong", client="10.0.0.9")
    auth.login(store, "ana", PASSWORD, client="10.0.0.9")
    clock.advance(minutes=15)
    done = auth.login(store, "ana", PASSWORD, client="10.0.0.9")
    auth.logout(store, done.session_id, client="10.0.0.9")
    entries = list(reversed(store.audit_log().entries))
    assert [e.action for e in entries] == ["login_failed"] * 5 + ["login_throttled", "login", "logout"]
    assert [e.user for e in entries] == [None] * 6 + ["ana", "ana"]
    assert {e.client for e in entries} == {"10.0.0.9"}
    assert entries[0].target == "ana"


@pytest.mark.parametrize(("password", "problem"), [("", "empty"), ("        ", "empty"), ("seven77", "7 characters")])
def test_a_short_password_is_refused(store: Store, password: str, problem: str):
    with pytest.raises(AccountError, match=problem):
        auth.add_user(store, "ana", "viewer", password=password)
    assert store.users() == []


def test_removing_a_user_is_audited_and_their_token_stops_working(store: Store):
    _, token = auth.add_user(store, "bo", "viewer")
    user, tokens = auth.remove_user(store, "BO", by="ana")
    assert (user.name, tokens) == ("bo", 1)
    assert auth.token_user(store, token) is None
    assert [(e.action, e.user, e.target) for e in store.audit_log().entries] == [
        ("user_removed", "ana", "bo"), ("user_added", None, "bo")]
