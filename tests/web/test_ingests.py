"""Loading data from the server, through its HTTP interface: an export folder zipped, sent by an admin, ingested.

The figures the server must reach are the command line's: the same folder ingested by
``training-roi ingest`` into a fresh warehouse of its own gives the row count of every table (read
with SQL from both warehouse files) and the rows quarantined (from its ``--json`` account). The
server is the real application on a fresh, empty warehouse, driven by Starlette's test client; its
ingests run the command in a process of their own, and every wait is bounded.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import time
import zipfile
from pathlib import Path
from typing import Any

import duckdb
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.builders import rename_cell
from tests.web.state import CHEAP, csrf_of, sign_in
from training_roi.cli import app as cli
from training_roi.simulate import simulate
from training_roi.warehouse.connection import connect, ensure_tables
from training_roi.web import ingest_records
from training_roi.web.app import create_app
from training_roi.web.archive import Limits
from training_roi.web.auth import add_user
from training_roi.web.loader import STOPPED
from training_roi.web.store import Store

WAIT = 120.0
"""Seconds an ingest may take on a slow machine before the test gives up (one here takes about 6 s)."""

LIMIT = 256 * 1024
"""The largest archive the tests' server takes: the simulated org zipped is about 100 KiB."""

SPOILED = (1, 3, 5)
"""The rows of costs.csv whose amount the bad-rows folder spoils."""


def _fresh_warehouse(db: Path) -> Path:
    """An empty warehouse: every table, no row (what an ingest makes of a file that does not exist yet)."""
    con = connect(db)
    ensure_tables(con)
    con.disconnect()
    return db


def _counts(db: Path) -> dict[str, int]:
    """Rows of every table of a warehouse file, by SQL."""
    with duckdb.connect(str(db), read_only=True) as con:
        names = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                           "WHERE table_schema = 'main' ORDER BY table_name").fetchall()]
        return {n: int(con.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0]) for n in names}  # type: ignore[index]


def _cli_ingest(data: Path, db: Path) -> dict[str, Any]:
    """``training-roi ingest DATA --db DB --json`` into a fresh warehouse: its JSON account."""
    result = CliRunner().invoke(cli, ["ingest", str(data), "--db", str(db), "--json"])
    assert result.exit_code in (0, 1), result.stderr
    account: dict[str, Any] = json.loads(result.stdout)
    return account


def _zipped(folder: Path, prefix: str = "") -> bytes:
    """The files of ``folder`` as a zip archive, each under ``prefix`` (``export/``: the folder zipped as itself)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.name.startswith("truth"):
                archive.write(path, prefix + path.relative_to(folder).as_posix())
    return buffer.getvalue()


def _with(folder: Path, *members: tuple[zipfile.ZipInfo | str, bytes]) -> bytes:
    """The folder zipped, with ``members`` added as they are named (a path outside, a link, a bomb)."""
    buffer = io.BytesIO(_zipped(folder))
    with zipfile.ZipFile(buffer, "a", zipfile.ZIP_DEFLATED) as archive:
        for info, content in members:
            archive.writestr(info, content)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    work = tmp_path_factory.mktemp("ingests")
    data = work / "data"
    simulate(data, reps=12, months=6, seed=3)
    bad = work / "bad"
    bad.mkdir()
    shutil.copyfile(data / "costs.csv", bad / "costs.csv")
    for row in SPOILED:
        rename_cell(bad / "costs.csv", "amount", row, "twelve dollars")
    db = _fresh_warehouse(work / "roi.duckdb")
    store = Store(work / "roi.duckdb.server.sqlite", hasher=CHEAP)
    tokens = {}
    for role in ("viewer", "analyst", "admin"):
        _, tokens[role] = add_user(store, role, role, password=f"{role}-secret-1")
    application = create_app(db, store, snapshot_every=0.0, snapshot_in_background=False,
                             archive_limits=Limits(archive_bytes=LIMIT))
    with TestClient(application) as client:
        yield {"client": client, "tokens": tokens, "work": work, "data": data, "bad": bad, "db": db, "store": store,
               "app": application}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _send(client: TestClient, body: bytes, token: str | None, name: str | None = None,
          kind: str = "application/zip") -> Any:
    headers = {"Content-Type": kind, **(_auth(token) if token else {})}
    return client.post("/api/v1/ingests", content=body, headers=headers, params={"name": name} if name else None)


def _finished(client: TestClient, url: str, token: str) -> dict[str, Any]:
    """Poll an ingest until it is done or failed, at most :data:`WAIT` seconds; every status seen on the way."""
    deadline, seen = time.monotonic() + WAIT, []
    while True:
        found: dict[str, Any] = client.get(url, headers=_auth(token)).json()
        seen.append((found["status"], found["progress"]))
        if found["status"] in ("done", "failed"):
            found["seen"] = seen
            return found
        assert time.monotonic() < deadline, f"the ingest was still {found['status']} after {WAIT:.0f} s: {seen[-1]}"
        time.sleep(0.2)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_admins_archive_loads_what_the_command_line_loads(served: Any) -> None:
    client, store, admin = served["client"], served["store"], served["tokens"]["admin"]
    before = client.get("/api/v1/quality", headers=_auth(admin)).json()["tables"]
    assert before and set(before.values()) == {0}  # the fresh warehouse, as the server's snapshot has it
    expected = _cli_ingest(served["data"], served["work"] / "cli.duckdb")
    cli_counts = _counts(served["work"] / "cli.duckdb")
    cli_quarantined = sum(s["rows_quarantined"] for s in expected["ingest"]["sources"])

    answer = _send(client, _zipped(served["data"], "export/"), admin, name="org-export.zip")
    assert answer.status_code == 202
    queued = answer.json()
    assert queued["status"] == "queued"
    assert answer.headers["location"] == queued["url"] == f"/api/v1/ingests/{queued['id']}"
    found = _finished(client, queued["url"], admin)
    assert found["status"] == "done", found["error"]
    assert any(status == "running" and progress and progress.startswith("reading ") for status, progress in
               found["seen"]) or found["seen"][0][0] == "done"

    assert _counts(served["db"]) == cli_counts  # every table, quarantine and ingest_run among them
    assert found["ok"] is True and found["file"] == "org-export.zip"
    assert {s["source"]: s["rows_loaded"] for s in found["sources"]} == {
        s["source"]: s["rows_loaded"] for s in expected["ingest"]["sources"]}
    assert found["quarantined"] == cli_quarantined > 0  # the simulated xAPI export has bad statements
    assert f"{cli_quarantined:,} rows quarantined" in " ".join(found["warnings"])  # said, never a silent success
    after = client.get("/api/v1/quality", headers=_auth(admin)).json()["tables"]  # the server's next snapshot
    assert after == {name: cli_counts[name] for name in after}
    lines = [e for e in store.audit_log(action="ingest").entries if e.target == f"ingest {queued['id']}"]
    assert [e.user for e in lines] == ["admin", "admin"]
    assert "org-export.zip" in lines[1].detail and "queued" in lines[1].detail  # type: ignore[operator]
    assert lines[0].detail.startswith("org-export.zip: done")  # type: ignore[union-attr]
    assert f"{cli_quarantined:,} quarantined" in lines[0].detail  # type: ignore[operator]


def test_a_file_with_bad_rows_is_done_with_the_command_lines_quarantine_count(served: Any) -> None:
    client, admin = served["client"], served["tokens"]["admin"]
    expected = _cli_ingest(served["bad"], served["work"] / "cli-bad.duckdb")
    with duckdb.connect(str(served["work"] / "cli-bad.duckdb"), read_only=True) as con:
        spoiled = con.execute("SELECT count(*) FROM quarantine WHERE source = 'costs'").fetchone()[0]  # type: ignore[index]
    assert spoiled == len(SPOILED)
    answer = _send(client, _zipped(served["bad"]), admin)
    found = _finished(client, answer.json()["url"], admin)
    assert found["status"] == "done" and found["file"] == "export.zip"
    assert found["quarantined"] == sum(s["rows_quarantined"] for s in expected["ingest"]["sources"]) == len(SPOILED)
    assert [s["source"] for s in found["sources"]] == ["costs"]
    assert "3 rows quarantined: the quarantine lists each with its reason" in found["warnings"]
    listed = client.get("/api/v1/ingests", headers=_auth(admin))
    assert listed.status_code == 200 and listed.json()[0]["id"] == found["id"]  # newest first
    assert int(listed.headers["x-total-count"]) == len(ingest_records.ingests(served["store"])[0])
    one = client.get("/api/v1/ingests", headers=_auth(admin), params={"limit": 1})
    assert len(one.json()) == 1 and 'rel="next"' in one.headers["link"]


def test_only_an_admin_may_ingest(served: Any) -> None:
    client, tokens = served["client"], served["tokens"]
    body = _zipped(served["bad"])
    total = len(ingest_records.ingests(served["store"])[0])
    for role in ("viewer", "analyst"):
        assert _send(client, body, tokens[role]).status_code == 403
        assert client.get("/api/v1/ingests", headers=_auth(tokens[role])).status_code == 403
        assert client.get("/api/v1/ingests/1", headers=_auth(tokens[role])).status_code == 403
    anonymous = _send(client, body, None)
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/v1/ingests").status_code == 401
    assert _send(client, body, "not-a-token").status_code == 401
    assert len(ingest_records.ingests(served["store"])[0]) == total  # nothing queued
    refused = _send(client, body, tokens["admin"], kind="text/csv")
    assert refused.status_code == 415 and "application/zip" in refused.json()["detail"]
    assert client.get("/api/v1/ingests/999999", headers=_auth(tokens["admin"])).status_code == 404


def _link(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


@pytest.mark.parametrize(("members", "words"), [
    ([("../evil.csv", b"Id\n1\n")], "'../evil.csv' names a path outside the archive's folder"),
    ([("lms/../../evil.csv", b"Id\n1\n")], "names a path outside the archive's folder"),
    ([(zipfile.ZipInfo("/etc/evil.csv"), b"Id\n1\n")], "'/etc/evil.csv' names a path outside"),
    ([_link("crm/Lead.csv", "/etc/passwd")], "'crm/Lead.csv' is a symbolic link"),
    ([("lms/padding.jsonl", b"\n" * (2 << 20))], "more than 250 times its size: it looks like a zip bomb"),
    ([("lms/padding.jsonl", b"\n" * (8 << 20))], "more than the 4,194,304 an archive sent to be ingested may unpack "
                                                   "to: it looks like a zip bomb"),
], ids=["dot-dot", "dot-dot-inside", "absolute", "symlink", "ratio-bomb", "total-bomb"])
def test_an_unsafe_archive_is_refused_with_the_reason_and_nothing_is_written(
        served: Any, members: list[tuple[zipfile.ZipInfo | str, bytes]], words: str) -> None:
    client, store, db = served["client"], served["store"], served["db"]
    folder = served["app"].state.loader.folder
    digest, total = _digest(db), len(ingest_records.ingests(store)[0])
    refused = _send(client, _with(served["bad"], *members), served["tokens"]["admin"], name="crafted.zip")
    assert refused.status_code == 422
    assert refused.json()["detail"].startswith("crafted.zip") and words in refused.json()["detail"]
    assert _digest(db) == digest and len(ingest_records.ingests(store)[0]) == total
    assert list(folder.iterdir()) == []  # neither the archive nor anything of it is kept
    assert not list(served["work"].rglob("evil.csv"))
    line = store.audit_log(action="ingest_refused").entries[0]
    assert (line.user, line.target) == ("admin", "crafted.zip") and words in (line.detail or "")


def test_an_oversized_or_empty_archive_is_refused_and_nothing_is_written(served: Any) -> None:
    client, store, db, admin = served["client"], served["store"], served["db"], served["tokens"]["admin"]
    digest, total = _digest(db), len(ingest_records.ingests(store)[0])
    noise = _with(served["bad"], ("noise.bin", os.urandom(LIMIT)))
    assert len(noise) > LIMIT
    too_big = _send(client, noise, admin)
    assert too_big.status_code == 413 and f"larger than the {LIMIT:,} bytes" in too_big.json()["detail"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("notes/readme.txt", "nothing the ingest reads")
    empty = _send(client, buffer.getvalue(), admin)
    assert empty.status_code == 422 and "holds none of the files `training-roi ingest` reads" in empty.json()["detail"]
    not_zip = _send(client, b"Id,Name\n1,a\n", admin)
    assert not_zip.status_code == 422 and "is not a zip archive" in not_zip.json()["detail"]
    assert _digest(db) == digest and len(ingest_records.ingests(store)[0]) == total
    assert list(served["app"].state.loader.folder.iterdir()) == []


def test_the_page_takes_an_upload_with_the_sessions_csrf_token(served: Any) -> None:
    client, store, admin = served["client"], served["store"], served["tokens"]["admin"]
    client.cookies.clear()
    assert client.get("/admin/ingest", follow_redirects=False).headers["location"] == "/login?next=/admin/ingest"
    for role in ("viewer", "analyst"):
        assert sign_in(client, role, f"{role}-secret-1").status_code == 303
        assert client.get("/admin/ingest").status_code == 403
    assert sign_in(client, "admin", "admin-secret-1").status_code == 303
    assert 'href="/admin/ingest"' in client.get("/admin/users").text
    form = client.get("/admin/ingest")
    assert form.status_code == 200 and 'enctype="multipart/form-data"' in form.text
    csrf, body = csrf_of(form.text), _zipped(served["data"])
    total = len(ingest_records.ingests(store)[0])
    for wrong in ({}, {"csrf": "forged"}):
        sent = client.post("/admin/ingest", data=wrong, files={"file": ("org.zip", body, "application/zip")},
                           follow_redirects=False)
        assert sent.status_code == 403
    assert len(ingest_records.ingests(store)[0]) == total
    too_big = client.post("/admin/ingest", data={"csrf": csrf},
                          files={"file": ("big.zip", os.urandom(LIMIT + 1), "application/zip")})
    assert too_big.status_code == 413 and f"{LIMIT:,} bytes" in too_big.text
    sent = client.post("/admin/ingest", data={"csrf": csrf}, files={"file": ("org.zip", body, "application/zip")},
                       follow_redirects=False)
    assert sent.status_code == 303 and sent.headers["location"] == "/admin/ingest"
    record = ingest_records.ingests(store)[0][0]
    assert (record.file, record.sent_by, record.bytes) == ("org.zip", "admin", len(body))
    page = client.get("/admin/ingest")
    if ingest_records.ingest(store, record.id).status in ("queued", "running"):  # type: ignore[union-attr]
        assert '<meta http-equiv="refresh" content="2">' in page.text
    found = _finished(client, f"/api/v1/ingests/{record.id}", admin)
    assert found["status"] == "done"
    done = client.get("/admin/ingest")
    assert 'http-equiv="refresh"' not in done.text and 'href="/quality"' in done.text
    row = done.text.split(f'id="ingest-{record.id}"')[1].split("</tr>\n")[0]
    expected = _cli_ingest(served["data"], served["work"] / "cli-page.duckdb")["ingest"]["sources"]
    read = sum(s["rows_read"] for s in expected)
    assert read >= 1_000 and f"{read:,}" in row  # thousands separated
    client.cookies.clear()


def test_a_locked_warehouse_fails_the_ingest_with_the_commands_message(served: Any) -> None:
    client, admin, db = served["client"], served["tokens"]["admin"], served["db"]
    holder = duckdb.connect(str(db))  # another writer: this process, for longer than an ingest waits
    try:
        answer = _send(client, _zipped(served["bad"]), admin)
        assert answer.status_code == 202
        found = _finished(client, answer.json()["url"], admin)
    finally:
        holder.close()
    assert found["status"] == "failed" and found["ok"] is None
    assert found["error"].startswith(f"cannot open the warehouse {db}")
    assert f"PID {os.getpid()}" in found["error"]  # it names who holds the lock
    line = served["store"].audit_log(action="ingest").entries[0]
    assert line.detail.startswith("export.zip: failed: cannot open the warehouse")  # type: ignore[union-attr]


def test_a_stopped_server_marks_its_ingests_failed(served: Any, tmp_path: Path) -> None:
    db = _fresh_warehouse(tmp_path / "roi.duckdb")
    store = Store(tmp_path / "state.sqlite", hasher=CHEAP)
    _, token = add_user(store, "ada", "admin")
    application = create_app(db, store, snapshot_every=0.0, snapshot_in_background=False,
                             archive_limits=Limits(archive_bytes=LIMIT))
    with TestClient(application) as client:
        queued = [_send(client, _zipped(served["data"]), token).json() for _ in range(2)]
        assert [q["status"] for q in queued] == ["queued", "queued"]
    loader = application.state.loader
    assert loader._thread is not None
    loader._thread.join(timeout=WAIT)
    assert not loader._thread.is_alive()
    for q in queued:
        found = ingest_records.ingest(store, q["id"])
        assert found is not None and (found.status, found.error, found.outcome) == ("failed", STOPPED, None)
    assert list(loader.folder.iterdir()) == []
    assert _counts(db)  # the warehouse opens: the stopped ingest left it whole
    assert {e.target for e in store.audit_log(action="ingest").entries if "failed" in (e.detail or "")} == {
        f"ingest {q['id']}" for q in queued}
    # A server killed with an ingest queued: the next one to start marks it failed rather than leave it queued.
    left = ingest_records.queue(store, "left.zip", 1, "ada")
    with TestClient(create_app(db, store, snapshot_every=0.0, snapshot_in_background=False)):
        pass
    again = ingest_records.ingest(store, left.id)
    assert again is not None and (again.status, again.error) == ("failed", STOPPED)
