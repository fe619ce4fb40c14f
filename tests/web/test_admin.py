"""The admin area through its HTTP interface: users managed from the page and the API, the audit log read.

The server is the real application over an empty warehouse (the admin area reads none of it),
driven by Starlette's test client, with a viewer, an analyst and an admin who have passwords and
tokens. What the pages and the API say is checked against the state file read with plain SQL
(sqlite3), against the command line's own output (the words before a new token), and against what
the new user can then do (sign in, call the API).
"""

from __future__ import annotations

import hashlib
import math
import re
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import duckdb
import pytest
from fastapi.testclient import TestClient
from starlette.routing import Route
from typer.testing import CliRunner

from tests.web.state import Clock, csrf_of, sign_in
from training_roi.cli import app as cli
from training_roi.web import admin as admin_area
from training_roi.web import auth
from training_roi.web.app import create_app
from training_roi.web.auth import add_user
from training_roi.web.roster import LastAdminError
from training_roi.web.store import ROLES, Store

TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # 32 random bytes in base64url, as the command line prints a token
CHANGES = ("user_added", "role_changed", "password_set", "token_issued", "tokens_revoked", "user_removed")
"""The audit log's actions for a change to the users."""


def _password(name: str) -> str:
    return f"{name}-secret-1"


def _token(html: str) -> str:
    """The API token a page shows once (the page's forms carry CSRF tokens of the same form: not those)."""
    found = re.search(r'id="token">.*?<code>([^<]*)</code>', html, re.DOTALL)
    assert found and TOKEN.fullmatch(found.group(1)), html
    return found.group(1)


@pytest.fixture
def served(tmp_path: Path, store: Store) -> Iterator[dict[str, Any]]:
    """The application with a viewer, an analyst and an admin (each named for their role); a client per role."""
    db = tmp_path / "roi.duckdb"
    duckdb.connect(str(db)).close()
    tokens = {role: add_user(store, role, role, password=_password(role))[1] for role in ROLES}
    app = create_app(db, store, snapshot_every=0.0, snapshot_in_background=False,
                     snapshot_folder=tmp_path / "snapshots")
    with TestClient(app) as admin:
        assert sign_in(admin, "admin", _password("admin")).status_code == 303
        yield {"app": app, "store": store, "tokens": tokens, "admin": admin}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _sql(store: Store, query: str, *params: Any) -> list[Any]:
    """Rows of the state file read with sqlite3 directly, not through the product."""
    with sqlite3.connect(store.path) as con:
        return con.execute(query, params).fetchall()


def _users(store: Store) -> list[tuple[str, str]]:
    return _sql(store, "SELECT name, role FROM users ORDER BY name")


def _changes(store: Store) -> list[tuple[str, str | None, str]]:
    """The audit log's lines for changes to the users, oldest first: action, who, to whom."""
    return _sql(store, f"SELECT action, user, target FROM audit_log WHERE action IN ({', '.join('?' * len(CHANGES))}) "
                       "ORDER BY id", *CHANGES)


def _post(client: TestClient, path: str, **data: str) -> Any:
    """A form of the users page sent with the session's CSRF token (read from the page, as a browser would)."""
    csrf = csrf_of(client.get("/admin/users").text)
    return client.post(path, data={"csrf": csrf, **data}, follow_redirects=False)


def _message(html: str) -> str:
    found = re.search(r'id="message">([^<]*)<', html)
    assert found, html
    return found.group(1).replace("&#39;", "'")


def test_an_admin_adds_a_user_through_the_form_who_then_signs_in_and_uses_the_token(
        served: dict[str, Any], tmp_path: Path) -> None:
    admin, store, app = served["admin"], served["store"], served["app"]
    page = _post(admin, "/admin/users", name="cy", role="analyst", password="cy-secret-12", again="cy-secret-12")
    assert page.status_code == 200
    token = _token(page.text)
    assert page.text.count(token) == 1
    # The words before the token are those `training-roi users add` prints before its own.
    (tmp_path / "cli").mkdir()
    (tmp_path / "cli" / "roi.duckdb").touch()
    printed = CliRunner().invoke(cli, ["users", "add", "zed", "--role", "viewer", "--db",
                                       str(tmp_path / "cli" / "roi.duckdb")]).stdout.splitlines()
    before_token = printed[next(i for i, line in enumerate(printed) if TOKEN.fullmatch(line)) - 1]
    assert "will not be shown again" in before_token and before_token in page.text
    assert ("cy", "analyst") in _users(store)

    # The token is the analyst's: it reads the programs, not the admin's endpoints.
    other = TestClient(app)
    assert other.get("/api/v1/programs", headers=_auth(token)).status_code == 200
    assert other.get("/api/v1/users", headers=_auth(token)).status_code == 403
    signed = sign_in(other, "cy", "cy-secret-12")
    assert signed.status_code == 303 and signed.headers["location"] == "/"
    assert "cy (analyst)" in other.get("/").text
    # Shown once: the users page does not show it again, nor its hash.
    again = admin.get("/admin/users").text
    assert token not in again and hashlib.sha256(token.encode()).hexdigest() not in again


def _admin_routes() -> list[tuple[str, str]]:
    """Every (method, path) of the admin area's pages and endpoints, read from its routers, a user's name filled in."""
    return [(method, route.path.replace("{name}", "analyst"))
            for route in admin_area.api_router.routes + admin_area.page_router.routes if isinstance(route, Route)
            for method in sorted(route.methods) if method != "HEAD"]


def test_a_viewer_and_an_analyst_get_403_on_every_admin_page_and_endpoint(served: dict[str, Any]) -> None:
    app, store, tokens = served["app"], served["store"], served["tokens"]
    routes = _admin_routes()
    pages = [(m, p) for m, p in routes if not p.startswith("/api/")]
    endpoints = [(m, p) for m, p in routes if p.startswith("/api/")]
    assert len(pages) >= 7 and len(endpoints) >= 6
    users_before = _users(store)
    body = {"name": "mallory", "role": "admin"}
    for role in ("viewer", "analyst"):
        client = TestClient(app)
        assert sign_in(client, role, _password(role)).status_code == 303
        home = client.get("/").text
        assert 'href="/admin/users"' not in home  # no Admin link in the navigation
        csrf = csrf_of(home)  # the session's own token: the role, not the form, is what is refused
        for method, path in pages:
            answer = client.request(method, path, data={"csrf": csrf, **body, "confirm": "yes", "do": "revoke"}
                                    if method == "POST" else None)
            assert answer.status_code == 403, (role, method, path, answer.status_code)
            assert "<h1>403</h1>" in answer.text and f"your role ({role}) may not see this" in answer.text
        api = TestClient(app)  # no session: the API goes by the token alone
        for method, path in endpoints:
            sent = {"json": body} if method in ("POST", "PATCH") else {}
            assert api.request(method, path, headers=_auth(tokens[role]), **sent).status_code == 403, (
                role, method, path)
            anonymous = api.request(method, path, **sent)
            assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    assert _users(store) == users_before
    assert _changes(store) == [("user_added", None, role) for role in ROLES]
    refused = _sql(store, "SELECT count(*) FROM audit_log WHERE action = 'refused' AND detail LIKE '%manage_users'")
    assert refused[0][0] == 2 * (len(pages) + len(endpoints))
    assert 'href="/admin/users"' in served["admin"].get("/").text  # the admin's navigation has it


def test_a_form_without_the_sessions_csrf_token_is_refused_and_changes_nothing(served: dict[str, Any]) -> None:
    admin, store, app = served["admin"], served["store"], served["app"]
    posts = [p for m, p in _admin_routes() if m == "POST" and not p.startswith("/api/")]
    assert len(posts) == 5
    other = TestClient(app)  # another session's token is no better than none
    assert sign_in(other, "analyst", _password("analyst")).status_code == 303
    foreign = csrf_of(other.get("/").text)
    before = (_users(store), _sql(store, "SELECT count(*) FROM api_tokens"), _sql(store, "SELECT count(*) FROM "
                                                                                        "audit_log"))
    form = {"name": "mallory", "role": "admin", "password": "mallory-pw-1", "again": "mallory-pw-1",
            "confirm": "yes", "do": "revoke"}
    for path in posts:
        for csrf in ({}, {"csrf": ""}, {"csrf": foreign}):
            answer = admin.post(path, data={**form, **csrf})
            assert answer.status_code == 403, (path, csrf)
            assert "CSRF token does not match" in answer.text
    after = (_users(store), _sql(store, "SELECT count(*) FROM api_tokens"), _sql(store, "SELECT count(*) FROM "
                                                                                       "audit_log"))
    assert after == before
    assert auth.verify_password(store, "analyst", _password("analyst")) is not None


def test_the_last_admin_can_be_neither_removed_nor_demoted(served: dict[str, Any]) -> None:
    admin, store, tokens, app = served["admin"], served["store"], served["tokens"], served["app"]
    removed = _post(admin, "/admin/users/admin/remove", confirm="yes")
    assert removed.status_code == 409 and "admin is the last admin" in _message(removed.text)
    demoted = _post(admin, "/admin/users/admin/role", role="analyst")
    assert demoted.status_code == 409 and "make another user admin first" in _message(demoted.text)
    assert admin.delete("/api/v1/users/ADMIN", headers=_auth(tokens["admin"])).status_code == 409
    refused = admin.patch("/api/v1/users/admin", headers=_auth(tokens["admin"]), json={"role": "viewer"})
    assert refused.status_code == 409 and "last admin" in refused.json()["detail"]
    command = CliRunner().invoke(cli, ["users", "remove", "admin", "--db", "unused.duckdb", "--state", str(store.path)])
    assert command.exit_code == 2 and "admin is the last admin" in command.stderr
    assert len(command.stderr.strip().splitlines()) == 1
    assert ("admin", "admin") in _users(store)

    # With a second admin, the first may be demoted; then the second is the last.
    added = admin.post("/api/v1/users", headers=_auth(tokens["admin"]), json={"name": "ada", "role": "admin"})
    assert added.status_code == 201 and added.headers["location"] == "/api/v1/users/ada"
    ada = added.json()["token"]
    assert admin.patch("/api/v1/users/admin", headers=_auth(tokens["admin"]),
                       json={"role": "viewer"}).json()["role"] == "viewer"
    assert admin.get("/admin/users").status_code == 403  # the page follows the role at once
    assert TestClient(app).delete("/api/v1/users/ada", headers=_auth(ada)).status_code == 409
    assert _sql(store, "SELECT name FROM users WHERE role = 'admin'") == [("ada",)]


def test_an_admin_who_ends_their_own_session_or_role_leaves_the_admin_area(served: dict[str, Any]) -> None:
    admin, store = served["admin"], served["store"]
    add = _post(admin, "/admin/users", name="ada", role="admin", password="ada-secret-12", again="ada-secret-12")
    assert add.status_code == 200
    own = _post(admin, "/admin/users/admin/password", password="new-secret-12", again="new-secret-12")
    assert own.status_code == 303 and own.headers["location"].startswith("/login?message=password%20set%20for%20admin")
    assert admin.get("/admin/users", follow_redirects=False).headers["location"] == "/login?next=/admin/users"
    assert sign_in(admin, "admin", "new-secret-12").headers["location"] == "/"
    demoted = _post(admin, "/admin/users/admin/role", role="analyst")
    assert demoted.status_code == 303 and demoted.headers["location"] == "/"
    assert admin.get("/admin/users").status_code == 403
    assert _sql(store, "SELECT name, role FROM users WHERE name IN ('admin', 'ada') ORDER BY name") == [
        ("ada", "admin"), ("admin", "analyst")]


def _demote(store: Store, name: str, by: str, start: threading.Barrier, outcomes: list[str]) -> None:
    start.wait()
    try:
        auth.change_role(store, name, "viewer", by=by)
        outcomes.append("demoted")
    except LastAdminError:
        outcomes.append("refused")


def test_two_admins_demoting_each_other_at_once_leave_one_admin(store: Store) -> None:
    for round_ in range(10):
        pair = (f"a{round_}", f"b{round_}")
        for name in pair:
            store.add_user(name, "admin")
        outcomes: list[str] = []
        start = threading.Barrier(2)
        threads = [threading.Thread(target=_demote, args=(store, pair[0], pair[1], start, outcomes)),
                   threading.Thread(target=_demote, args=(store, pair[1], pair[0], start, outcomes))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(outcomes) == ["demoted", "refused"], round_
        left = _sql(store, "SELECT name FROM users WHERE role = 'admin'")
        assert len(left) == 1 and left[0][0] in pair
        with sqlite3.connect(store.path) as con:  # no admin left for the next round's pair to lean on
            con.execute("UPDATE users SET role = 'viewer' WHERE name = ?", left[0])


def test_every_change_is_in_the_audit_log_with_who_made_it(served: dict[str, Any]) -> None:
    admin, store, tokens, app = served["admin"], served["store"], served["tokens"], served["app"]
    first = _token(_post(admin, "/admin/users", name="cy", role="analyst", password="", again="").text)
    assert _post(admin, "/admin/users/cy/role", role="viewer").status_code == 200
    set_password = _post(admin, "/admin/users/cy/password", password="cy-secret-12", again="cy-secret-12")
    assert _message(set_password.text) == "password set for cy; 0 open login sessions ended"
    second = _token(_post(admin, "/admin/users/cy/tokens", do="issue").text)
    other = TestClient(app)
    assert other.get("/api/v1/programs", headers=_auth(second)).status_code == 200
    assert other.get("/api/v1/programs", headers=_auth(first)).status_code == 200
    revoked = _post(admin, "/admin/users/cy/tokens", do="revoke")
    assert _message(revoked.text) == "2 API tokens of cy no longer work"
    assert other.get("/api/v1/programs", headers=_auth(second)).status_code == 401
    assert sign_in(other, "cy", "cy-secret-12").headers["location"] == "/"  # the password still works
    assert _post(admin, "/admin/users/cy/remove", confirm="yes").status_code == 200
    api = admin.post("/api/v1/users", headers=_auth(tokens["admin"]), json={"name": "dee", "role": "viewer"})
    assert api.status_code == 201
    assert admin.delete("/api/v1/users/dee", headers=_auth(tokens["admin"])).json() == {
        "name": "dee", "role": "viewer", "tokens_revoked": 1}

    expected = [("user_added", "admin", "cy", "role analyst"), ("role_changed", "admin", "cy", "analyst → viewer"),
                ("password_set", "admin", "cy", "0 open sessions ended"), ("token_issued", "admin", "cy", None),
                ("tokens_revoked", "admin", "cy", "2 API tokens"), ("user_removed", "admin", "cy", "role viewer, 0 API "
                                                                                             "tokens"),
                ("user_added", "admin", "dee", "role viewer"), ("user_removed", "admin", "dee", "role viewer, 1 API "
                                                                                               "tokens")]
    placeholders = ", ".join("?" * len(CHANGES))
    logged = _sql(store, f"SELECT action, user, target, detail FROM audit_log WHERE action IN ({placeholders}) "
                         "AND target IN ('cy', 'dee') ORDER BY id", *CHANGES)
    assert logged == expected
    # The API gives the same lines, newest first, with who made each change.
    lines = admin.get("/api/v1/audit?user=admin&limit=1000", headers=_auth(tokens["admin"])).json()
    assert [(e["action"], e["user"], e["target"], e["detail"]) for e in lines if e["action"] in CHANGES] == \
        expected[::-1]


def _rows(html: str) -> list[list[str]]:
    """The audit page's table: each line's cells."""
    table = html.split("<th>client</th></tr>")[1].split("</table>")[0]
    return [re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", table)]


def test_the_audit_pages_filter_shows_only_the_matching_lines(served: dict[str, Any]) -> None:
    admin, store = served["admin"], served["store"]
    for i in range(70):
        store.audit(("view", "run_study", "login")[i % 3], user=("bo", "Cy", "bo", "dee", "bo")[i % 5],
                    target=f"thing {i}")
    wanted = _sql(store, "SELECT user, action, target FROM audit_log WHERE lower(user) = 'bo' AND action = "
                         "'run_study' ORDER BY id DESC")
    assert 5 < len(wanted) < 50
    page = admin.get("/admin/audit?user=BO&action=run_study")
    assert page.status_code == 200
    rows = _rows(page.text)
    assert [(r[1], r[2], r[3]) for r in rows] == wanted
    assert {r[0] for r in rows} == {"2025-03-14 09:00:00"}  # the clock's time, UTC, year first
    assert f"{len(wanted)} lines, newest first" in page.text and "older →" not in page.text

    # Unfiltered, fifty at a time, newest first; the next page is the next fifty as they were.
    everything = _sql(store, "SELECT id, action, target FROM audit_log ORDER BY id DESC")
    first = admin.get("/admin/audit")
    assert [(r[2], r[3]) for r in _rows(first.text)] == [(a, t or "") for _, a, t in everything[:50]]
    older = re.search(r'href="(/admin/audit\?[^"]*)">older', first.text)
    assert older
    second = admin.get(older.group(1).replace("&amp;", "&"))
    assert [(r[2], r[3]) for r in _rows(second.text)] == [(a, t or "") for _, a, t in everything[50:100]]


def _pages(client: TestClient, url: str, headers: dict[str, str]) -> tuple[list[dict[str, Any]], list[Any]]:
    """Every row, following the ``Link`` headers from ``url``; and each answer."""
    rows, answers = [], []
    while url:
        answer = client.get(url, headers=headers)
        assert answer.status_code == 200
        rows += answer.json()
        answers.append(answer)
        link = answer.headers.get("link")
        url = re.fullmatch(r'<([^>]+)>; rel="next"', link).group(1) if link else ""
    return rows, answers


def test_the_apis_pages_give_the_count_and_the_next_page(served: dict[str, Any]) -> None:
    admin, store, tokens = served["admin"], served["store"], served["tokens"]
    for i in range(237):
        store.audit("imported", user="etl", target=f"file {i}")
    ids = [r[0] for r in _sql(store, "SELECT id FROM audit_log ORDER BY id DESC")]
    rows, answers = _pages(admin, "/api/v1/audit?limit=100", _auth(tokens["admin"]))
    assert [r["id"] for r in rows] == ids  # the reads written meanwhile shift no page
    assert len(answers) == math.ceil(len(ids) / 100)
    assert {a.headers["x-total-count"] for a in answers} == {str(len(ids))}
    following = parse_qs(urlsplit(answers[0].headers["link"][1:].split(">")[0]).query)
    assert following == {"offset": ["100"], "limit": ["100"], "through": [str(ids[0])]}
    assert _sql(store, "SELECT count(*) FROM audit_log WHERE id > ?", ids[0])[0][0] == len(answers)  # the reads

    imported = _sql(store, "SELECT count(*) FROM audit_log WHERE action = 'imported' AND user = 'etl'")[0][0]
    filtered = admin.get("/api/v1/audit?action=imported&user=ETL&limit=50", headers=_auth(tokens["admin"]))
    assert filtered.headers["x-total-count"] == str(imported) and len(filtered.json()) == 50

    for i in range(5):
        add_user(store, f"user{i}", "viewer")
    names = [r[0] for r in _sql(store, "SELECT name FROM users ORDER BY name")]
    people, answers = _pages(admin, "/api/v1/users?limit=2", _auth(tokens["admin"]))
    assert [p["name"] for p in people] == names and len(answers) == math.ceil(len(names) / 2)
    assert {a.headers["x-total-count"] for a in answers} == {str(len(names))}
    assert "link" not in answers[-1].headers
    # No token or its hash is ever listed.
    listed = admin.get("/api/v1/users", headers=_auth(tokens["admin"])).text + admin.get("/admin/users").text
    for token in tokens.values():
        assert token not in listed and hashlib.sha256(token.encode()).hexdigest() not in listed
    assert {"token", "token_hash", "password_hash"}.isdisjoint(people[0])


def test_the_users_list_says_when_each_last_signed_in_and_used_a_token(served: dict[str, Any],
                                                                      clock: Clock) -> None:
    admin, store, tokens, app = served["admin"], served["store"], served["tokens"], served["app"]
    assert sign_in(TestClient(app), "viewer", _password("viewer")).headers["location"] == "/"
    clock.advance(minutes=5)
    listed = {u["name"]: u for u in admin.get("/api/v1/users", headers=_auth(tokens["admin"])).json()}
    signed_in = _sql(store, "SELECT user, max(at) FROM audit_log WHERE action = 'login' GROUP BY user")
    assert {n: listed[n]["last_sign_in"] for n in ROLES} == {
        "viewer": "2025-03-14T09:00:00+00:00", "analyst": None, "admin": "2025-03-14T09:00:00+00:00"}
    assert sorted(n for n, _ in signed_in) == ["admin", "viewer"]
    assert listed["admin"]["token_last_used"] == "2025-03-14T09:05:00+00:00"  # this very request
    assert listed["viewer"]["token_last_used"] is None
    assert [listed[n]["tokens"] for n in ROLES] == [1, 1, 1]
    # A user removed and added again under the same name has not signed in since.
    assert _post(admin, "/admin/users/viewer/remove", confirm="yes").status_code == 200
    assert _post(admin, "/admin/users", name="viewer", role="viewer").status_code == 200
    again = {u["name"]: u for u in admin.get("/api/v1/users", headers=_auth(tokens["admin"])).json()}
    assert again["viewer"]["last_sign_in"] is None and again["viewer"]["created"] == "2025-03-14T09:05:00+00:00"
    row = re.search(r"<tr><td>viewer</td>.*?</tr>", admin.get("/admin/users").text)
    assert row and row.group(0).count("never") == 2 and "2025-03-14 09:05 UTC" in row.group(0)


def test_bad_input_on_the_forms_is_a_message_not_an_error(served: dict[str, Any]) -> None:
    admin, store = served["admin"], served["store"]
    cases = [("/admin/users", {"name": "bad name!", "role": "viewer"}, "user name 'bad name!'"),
             ("/admin/users", {"name": "ANALYST", "role": "viewer"}, "user 'analyst' exists already"),
             ("/admin/users", {"name": "cy", "role": "viewer", "password": "short", "again": "short"},
              "the password has 5 characters: use at least 8"),
             ("/admin/users", {"name": "cy", "role": "viewer", "password": "long-enough-1", "again": "other-one-1"},
              "the two passwords do not match"),
             ("/admin/users", {"name": "cy", "role": "owner"}, "expected one of viewer, analyst, admin"),
             ("/admin/users/nobody/role", {"role": "viewer"}, "no user 'nobody'"),
             ("/admin/users/viewer/password", {"password": "        ", "again": "        "}, "the password is empty"),
             ("/admin/users/viewer/remove", {}, "tick the box beside the button to confirm"),
             ("/admin/users/viewer/tokens", {"do": "print"}, "press the button that issues a new one")]
    before = _users(store)
    for path, form, words in cases:
        answer = _post(admin, path, **form)
        assert answer.status_code == 422, (path, form, answer.status_code)
        assert words in _message(answer.text), (path, form)
        assert "Traceback" not in answer.text
    assert _users(store) == before
