"""Running a study from the server, through its HTTP interface: queued, computed in the background, stored.

A small simulated org is ingested and reported once by the command line; its result.json is the
figure a run of the same study on the server must store unchanged, and the command line's own
message for an invalid study file is the message the server must give for the same text. The
server is the real application, driven by Starlette's test client; every wait is bounded.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.builders import ingest_and_report, simulated_with_trained_rep_named
from tests.web.state import CHEAP, csrf_of, sign_in
from training_roi.cli import app as cli
from training_roi.web.app import create_app
from training_roi.web.auth import add_user
from training_roi.web.runs import STOPPED
from training_roi.web.store import Store

WAIT = 180.0
"""Seconds a run may take on a slow machine before the test gives up (a run here takes about 5 s)."""

INVALID = "name: Pilot\nprogram: {activities: [a]}\nwindows: {primary_days: ninety}\nbogus_key: 1\n"
"""A study with a window that is not a number and a key that is not a setting."""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    work = tmp_path_factory.mktemp("runs")
    truth = simulated_with_trained_rep_named(work / "data", "Zelda Quimby")
    out = ingest_and_report(work / "data", work, truth, "Sales Excellence pilot")
    store = Store(work / "state.sqlite", hasher=CHEAP)
    tokens = {}
    for role in ("viewer", "analyst", "admin"):
        _, tokens[role] = add_user(store, role, role, password=f"{role}-secret-1")
    application = create_app(work / "roi.duckdb", store, results=[out], snapshot_every=0.0,
                             snapshot_in_background=False)
    with TestClient(application) as client:
        yield {"client": client, "tokens": tokens, "out": out, "work": work, "store": store,
               "study": (work / "study.yaml").read_text(encoding="utf-8"),
               "result": json.loads((out / "result.json").read_text(encoding="utf-8"))}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _post(client: TestClient, text: str, token: str | None, kind: str = "application/yaml") -> Any:
    headers = {"Content-Type": kind, **(_auth(token) if token else {})}
    return client.post("/api/v1/studies", content=text.encode("utf-8"), headers=headers)


def _finished(client: TestClient, url: str, token: str) -> dict[str, Any]:
    """Poll a run until it is done or failed, at most :data:`WAIT` seconds; every status seen on the way."""
    deadline, seen = time.monotonic() + WAIT, []
    while True:
        run: dict[str, Any] = client.get(url, headers=_auth(token)).json()
        seen.append((run["status"], run["progress"]))
        if run["status"] in ("done", "failed"):
            run["seen"] = seen
            return run
        assert time.monotonic() < deadline, f"the run was still {run['status']} after {WAIT:.0f} s: {seen[-1]}"
        time.sleep(0.2)


def _cli_message(folder: Path, name: str, text: str, db: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """What `training-roi report NAME` prints, run in ``folder`` on a file NAME holding ``text``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    monkeypatch.chdir(folder)
    result = CliRunner().invoke(cli, ["report", name, "--db", str(db), "--out", str(folder / "out")])
    assert result.exit_code == 2, result.output
    line: str = result.stderr.strip()
    assert line.startswith("error: ")
    return line.removeprefix("error: ")


def _sign_in(client: TestClient, name: str) -> None:
    assert sign_in(client, name, f"{name}-secret-1").status_code == 303


def test_an_analysts_run_stores_the_reports_own_result_json_as_the_next_version(served: Any) -> None:
    client, store, result = served["client"], served["store"], served["result"]
    h = result["study"]["hash"]
    assert [r.version for r in store.versions(h)] == [1]  # the command line's report, imported
    answer = _post(client, served["study"], served["tokens"]["analyst"])
    assert answer.status_code == 202
    queued = answer.json()
    assert (queued["study_hash"], queued["version"], queued["name"]) == (h, 2, "Sales Excellence pilot")
    assert queued["url"] == f"/api/v1/studies/{h}/versions/2" and answer.headers["location"] == queued["url"]
    run = _finished(client, queued["url"], served["tokens"]["analyst"])
    assert run["status"] == "done", run["error"]
    assert run["result"] == result  # same data + same study = the same document
    assert store.result(h, 2).document == (served["out"] / "result.json").read_text(encoding="utf-8")  # byte for byte
    assert any(status == "running" and progress and "% done)" in progress for status, progress in run["seen"]) or \
        run["seen"][0][0] == "done"
    for name in ("report.html", "summary.html", "summary.pdf", "roi_model.xlsx"):
        assert store.file(h, 2, name), name
    assert store.file(h, 2, "summary.pdf")[:5] == b"%PDF-"  # type: ignore[index]
    audit = store.audit_log(action="run_study").entries
    assert audit and audit[0].user == "analyst" and audit[0].target == f"study {h} v2"
    listed = client.get("/api/v1/studies", headers=_auth(served["tokens"]["viewer"])).json()
    assert [(r["study_hash"], r["version"], r["status"], r["run_by"]) for r in listed] == [(h, 2, "done", None)]


def test_a_viewer_may_not_run_a_study_and_nobody_anonymous(served: Any) -> None:
    client, text = served["client"], served["study"]
    assert _post(client, text, served["tokens"]["viewer"]).status_code == 403
    anonymous = _post(client, text, None)
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    assert _post(client, text, "not-a-token").status_code == 401
    assert client.get("/api/v1/studies").status_code == 401
    refused = _post(client, text, served["tokens"]["analyst"], kind="application/json")
    assert refused.status_code == 415 and "application/yaml" in refused.json()["detail"]
    too_big = _post(client, "# " + "x" * (1 << 20) + "\n" + text, served["tokens"]["analyst"])
    assert too_big.status_code == 413 and "1,048,576 bytes" in too_big.json()["detail"]


def test_an_invalid_study_gets_the_command_lines_message(served: Any, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    client, store = served["client"], served["store"]
    expected = _cli_message(tmp_path, "study.yaml", INVALID, served["work"] / "roi.duckdb", monkeypatch)
    assert "windows.primary_days" in expected and "bogus_key" in expected  # both problems, in one message
    for kind in ("application/yaml", "text/plain"):
        refused = _post(client, INVALID, served["tokens"]["analyst"], kind=kind)
        assert refused.status_code == 422
        assert refused.json() == {"detail": expected}
    not_yaml = "name: [unclosed\n"
    expected = _cli_message(tmp_path / "b", "study.yaml", not_yaml, served["work"] / "roi.duckdb", monkeypatch)
    refused = _post(client, not_yaml, served["tokens"]["admin"])
    assert refused.status_code == 422 and refused.json()["detail"] == expected
    assert not [r for r in store.latest_results() if r.study_name == "Pilot"]  # nothing queued


def test_a_study_sent_to_the_server_may_name_no_file(served: Any, tmp_path: Path) -> None:
    secret = tmp_path / "ids.csv"
    secret.write_text("id\n005SECRET000001\n", encoding="utf-8")
    for name in (str(secret), "../../../../../../" + str(secret).lstrip("/"), "ids.csv"):
        study = yaml.safe_load(served["study"])
        study["comparison"] = {"design": "holdout", "holdout_file": name}
        refused = _post(served["client"], yaml.safe_dump(study), served["tokens"]["analyst"])
        assert refused.status_code == 422
        detail = refused.json()["detail"]
        assert "comparison: holdout_file: " in detail and "under comparison.holdout" in detail
        assert "SECRET" not in detail


def test_a_study_that_fails_on_the_data_ends_failed_with_the_reason(served: Any) -> None:
    study = yaml.safe_load(served["study"])
    study["program"]["name"] = "Sales Excelence"  # a typo: no cost line names it
    study["name"] = "Typo pilot"
    answer = _post(served["client"], yaml.safe_dump(study), served["tokens"]["analyst"])
    assert answer.status_code == 202
    run = _finished(served["client"], answer.json()["url"], served["tokens"]["analyst"])
    assert run["status"] == "failed" and run["result"] is None
    assert "no cost line" in run["error"] and "'Sales Excellence'" in run["error"] and "\n" not in run["error"]
    assert served["store"].file_names(run["study_hash"], run["version"]) == []


def test_the_page_runs_a_study_with_the_sessions_csrf_token(served: Any, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    client, store = served["client"], served["store"]
    client.cookies.clear()
    assert client.get("/run", follow_redirects=False).headers["location"] == "/login?next=/run"
    _sign_in(client, "viewer")
    assert client.get("/run").status_code == 403
    assert 'href="/run"' not in client.get("/").text
    _sign_in(client, "analyst")
    assert 'href="/run"' in client.get("/").text
    form = client.get("/run")
    assert form.status_code == 200
    starter = form.text.split('name="study"')[1].split(">", 1)[1].split("</textarea>")[0]
    assert "program:" in starter and "activities:" in starter  # the warehouse's starter study
    csrf = csrf_of(form.text)
    study = yaml.safe_load(served["study"])
    study["windows"] = {"primary_days": 90}  # another study: its own hash
    text = yaml.safe_dump(study)
    for wrong in ({}, {"csrf": "forged"}):
        assert client.post("/run", data={"study": text, **wrong}, follow_redirects=False).status_code == 403
    before = {r.study_hash for r in store.latest_results()}
    sent = client.post("/run", data={"study": text, "csrf": csrf}, follow_redirects=False)
    assert sent.status_code == 303
    h = next(r.study_hash for r in store.latest_results() if r.study_hash not in before)
    assert sent.headers["location"] == f"/studies/{h}?version=1"
    page = client.get(sent.headers["location"])
    run = store.result(h, 1)
    assert page.status_code == 200 and run is not None
    if run.status in ("queued", "running"):
        assert 'http-equiv="refresh"' in page.text
    assert any(status in page.text for status in ("queued", "running", "done"))
    _finished(client, f"/api/v1/studies/{h}/versions/1", served["tokens"]["analyst"])
    done = client.get(sent.headers["location"])
    assert "· done" in done.text and 'http-equiv="refresh"' not in done.text
    # An uploaded file takes the text's place; an invalid one comes back with the message the CLI prints for it.
    expected = _cli_message(tmp_path, "my-study.yaml", INVALID, served["work"] / "roi.duckdb", monkeypatch)
    again = client.post("/run", data={"study": "", "csrf": csrf},
                        files={"file": ("my-study.yaml", INVALID.encode("utf-8"), "application/yaml")})
    assert again.status_code == 422
    assert expected.replace("'", "&#39;") in again.text and "bogus_key: 1" in again.text  # message and text kept
    client.cookies.clear()


def test_a_queued_runs_page_refreshes_itself(served: Any) -> None:
    client, store = served["client"], served["store"]
    waiting = store.queue_result("0123456789abcdef", "Waiting pilot", "name: Waiting pilot\n", "analyst")
    try:
        _sign_in(client, "analyst")
        page = client.get(f"/studies/{waiting.study_hash}")
        assert "· queued" in page.text and '<meta http-equiv="refresh" content="2">' in page.text
    finally:
        store.update_result(waiting.study_hash, 1, status="failed", error="not run: a test's placeholder")
        client.cookies.clear()


def test_a_stopped_server_leaves_no_run_half_written(served: Any, tmp_path: Path) -> None:
    db = tmp_path / "roi.duckdb"
    shutil.copyfile(served["work"] / "roi.duckdb", db)
    store = Store(tmp_path / "state.sqlite", hasher=CHEAP)
    _, token = add_user(store, "ana", "analyst")
    application = create_app(db, store, snapshot_every=0.0, snapshot_in_background=False)
    with TestClient(application) as client:
        queued = [_post(client, served["study"], token).json() for _ in range(2)]
    runner = application.state.runner
    assert runner._thread is not None
    runner._thread.join(timeout=WAIT)
    assert not runner._thread.is_alive()
    for q in queued:
        run = store.result(q["study_hash"], q["version"])
        assert run is not None and (run.status, run.error, run.document) == ("failed", STOPPED, None)
        assert store.file_names(q["study_hash"], q["version"]) == []
    # A server killed with a run queued: the next one to start marks it failed rather than leave it queued.
    left = store.queue_result("fedcba9876543210", "Left pilot", "name: Left pilot\n", "ana")
    with TestClient(create_app(db, store, snapshot_every=0.0, snapshot_in_background=False)):
        pass
    again = store.result(left.study_hash, left.version)
    assert again is not None and (again.status, again.error) == ("failed", STOPPED)
