"""The server end to end through its HTTP interface: tokens, sessions, roles, results, KPIs, snapshots.

A small simulated org is ingested and reported once (the report's own result.json is the figure
the server must show unchanged); the server is the real application, driven by Starlette's test
client. What a viewer may read is checked against the full result: no learner's name, email or
CRM id anywhere in what the viewer gets. The KPIs are checked against won and closed deals
counted with plain SQL on the warehouse.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest
from fastapi.testclient import TestClient

from tests.web.conftest import LEARNER, ReportedOrg
from tests.web.state import CHEAP, serving, sign_in
from training_roi.web.app import create_app
from training_roi.web.auth import add_user
from training_roi.web.store import Store

NAME = LEARNER


@pytest.fixture(scope="module")
def served(reported_org: ReportedOrg, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The application over a private copy of the reported org's warehouse (a test here writes into it)."""
    work = tmp_path_factory.mktemp("served")
    db = work / "roi.duckdb"
    shutil.copyfile(reported_org.db, db)
    store = Store(work / "state.sqlite", hasher=CHEAP)
    tokens = {}
    for role in ("viewer", "analyst", "admin"):
        _, tokens[role] = add_user(store, role, role, password=f"{role}-secret-1")
    app = create_app(db, store, results=[reported_org.out], snapshot_every=0.0, snapshot_in_background=False)
    with TestClient(app) as client:
        yield {"client": client, "tokens": tokens, "out": reported_org.out, "db": db, "store": store,
               "result": reported_org.result}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _people(result: dict[str, Any]) -> set[str]:
    """Every learner's name, email and CRM id in the full result: what a viewer must never see."""
    found = set()
    for row in result["headline"]["learners"]:
        found.update(v for v in (row["name"], row["learner"], row["unit_id"]) if v)
    return found


def test_every_data_endpoint_refuses_anonymous_and_health_is_public(served: dict[str, Any]) -> None:
    client = served["client"]
    spec = client.get("/api/v1/openapi.json").json()
    paths = [p for p in spec["paths"] if p != "/api/v1/health"]
    assert len(paths) >= 5
    h = served["result"]["study"]["hash"]
    for path in paths:
        url = path.replace("{study_hash}", h).replace("{version}", "1")
        for headers in ({}, _auth("not-a-token")):
            r = client.get(url, headers=headers)
            assert r.status_code == 401, (url, r.status_code)
            assert r.headers["www-authenticate"] == "Bearer"
    health = client.get("/api/v1/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    modified = health.json()["warehouse_modified"]
    from datetime import UTC, datetime
    assert datetime.fromisoformat(modified) == datetime.fromtimestamp(served["db"].stat().st_mtime, UTC)


def test_programs_show_the_reports_own_figures(served: dict[str, Any]) -> None:
    client, result = served["client"], served["result"]
    rows = client.get("/api/v1/programs", headers=_auth(served["tokens"]["analyst"])).json()
    assert len(rows) == 1
    row = rows[0]
    assert row["name"] == "Sales Excellence pilot" and row["study_hash"] == result["study"]["hash"]
    assert row["roi_pct"] == result["headline"]["roi_pct"] and row["cost"] == result["costs"]["total"]
    assert row["central_roi_interval"] == result["headline"]["central"]["roi_interval"]
    assert row["prob_positive"] == result["headline"]["central"]["prob_positive"]
    assert 5 in row["levels_reached"]


def test_restarting_with_the_same_results_adds_no_version(served: dict[str, Any]) -> None:
    from training_roi.web.results import import_results

    h = served["result"]["study"]["hash"]
    assert import_results(served["store"], [served["out"]]) == [(h, 1)]
    assert [r.version for r in served["store"].versions(h)] == [1]


def test_an_analyst_reads_the_whole_result_a_viewer_none_of_its_people(served: dict[str, Any]) -> None:
    client, result, tokens = served["client"], served["result"], served["tokens"]
    h = result["study"]["hash"]
    full = client.get(f"/api/v1/studies/{h}", headers=_auth(tokens["analyst"])).json()
    assert full["result"] == result
    people = _people(result)
    assert NAME in people
    seen = client.get(f"/api/v1/studies/{h}", headers=_auth(tokens["viewer"]))
    assert seen.status_code == 200
    text = seen.text
    assert not [p for p in people if p in text]
    assert json.loads(text)["result"]["headline"]["roi_pct"] == result["headline"]["roi_pct"]  # aggregates kept
    assert client.get("/api/v1/kpis?grain=rep&kpi=win_rate", headers=_auth(tokens["viewer"])).status_code == 403
    assert client.get("/api/v1/kpis?grain=team&kpi=win_rate", headers=_auth(tokens["viewer"])).status_code == 200


def test_org_win_rate_by_month_equals_won_over_closed_counted_in_sql(served: dict[str, Any]) -> None:
    client = served["client"]
    rows = client.get("/api/v1/kpis?kpi=win_rate&grain=org", headers=_auth(served["tokens"]["viewer"])).json()
    by_month = {r["period"][:7]: r["value"] for r in rows if r["value"] is not None}
    with duckdb.connect(str(served["db"]), read_only=True) as con:
        counted = con.sql("""
            SELECT strftime(close_date, '%Y-%m') AS m, count(*) FILTER (WHERE is_won) / count(*) AS rate
            FROM crm_opportunity WHERE is_closed AND close_date IS NOT NULL AND NOT is_deleted GROUP BY m
        """).fetchall()
    assert len(by_month) >= 10
    for month, rate in counted:
        if month in by_month:
            assert by_month[month] == pytest.approx(rate, abs=1e-12), month
    csv = client.get("/api/v1/kpis?kpi=win_rate&grain=org&format=csv", headers=_auth(served["tokens"]["viewer"]))
    assert csv.headers["content-type"].startswith("text/csv") and csv.text.splitlines()[0].startswith("kpi,")


def test_pages_need_a_session_and_a_viewer_sees_no_name(served: dict[str, Any]) -> None:
    client, result = served["client"], served["result"]
    client.cookies.clear()
    first = client.get("/", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/login?next=/"
    wrong = sign_in(client, "viewer", "not-it")
    assert wrong.status_code == 303 and "wrong+name+or+password" in wrong.headers["location"].replace("%20", "+")
    ok = sign_in(client, "viewer", "viewer-secret-1")
    assert ok.status_code == 303
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    h = result["study"]["hash"]
    listing = client.get("/")
    assert listing.status_code == 200 and "Sales Excellence pilot" in listing.text
    assert "content-security-policy" in listing.headers and listing.headers["x-frame-options"] == "DENY"
    page = client.get(f"/studies/{h}")
    assert page.status_code == 200
    assert not [p for p in _people(result) if p in page.text]
    assert client.get(f"/studies/{h}/v1/report.html").status_code == 403
    assert client.get(f"/studies/{h}/v1/summary.pdf").content[:5] == b"%PDF-"
    assert client.get("/kpis?kpi=win_rate&grain=rep").status_code == 403
    assert client.post("/logout", data={"csrf": "forged"}).status_code == 403
    client.cookies.clear()


def test_an_analyst_opens_the_full_report(served: dict[str, Any]) -> None:
    client, result = served["client"], served["result"]
    client.cookies.clear()
    assert sign_in(client, "analyst", "analyst-secret-1").status_code == 303
    h = result["study"]["hash"]
    report = client.get(f"/studies/{h}/v1/report.html")
    assert report.status_code == 200 and report.content == (served["out"] / "report.html").read_bytes()
    assert [p for p in _people(result) if p in report.text]  # the per-learner rows: an analyst's to read
    kpis = client.get("/kpis?kpi=win_rate&grain=rep")
    assert kpis.status_code == 200 and NAME in kpis.text
    client.cookies.clear()


def test_the_server_keeps_serving_while_a_load_writes_and_then_sees_it(served: dict[str, Any]) -> None:
    client, db = served["client"], served["db"]
    viewer = _auth(served["tokens"]["viewer"])
    before = client.get("/api/v1/quality", headers=viewer).json()["tables"]["cost_line"]
    assert client.get("/api/v1/kpis?kpi=pipeline_created&grain=org", headers=viewer).status_code == 200
    writer = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys\n"
         f"con = duckdb.connect({str(db)!r})\n"
         "con.execute(\"INSERT INTO cost_line SELECT * FROM cost_line LIMIT 1\")\n"
         "print('written', flush=True)\n"
         "sys.stdin.readline()\n"
         "con.close()\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "written"
        during = client.get("/api/v1/quality", headers=viewer)
        assert during.status_code == 200 and during.json()["tables"]["cost_line"] == before
        assert client.get("/api/v1/health").json()["warehouse_busy_since"] is not None
    finally:
        writer.communicate("\n", timeout=60)
    after = client.get("/api/v1/quality", headers=viewer).json()["tables"]["cost_line"]
    assert after == before + 1
    assert client.get("/api/v1/health").json()["warehouse_busy_since"] is None
    # The KPIs asked of the old snapshot were computed on the new one before it was swapped in.
    from training_roi.web import api
    now = str(client.app.state.snapshots.current().path)  # type: ignore[attr-defined]
    assert [k for k in api._KPIS.asked() if k[0] == now and k[1] == ("pipeline_created",)]


def test_in_the_background_a_new_snapshot_arrives_without_a_request_waiting(tmp_path: Path) -> None:
    import time

    import duckdb

    from training_roi.web.snapshot import Snapshots

    db = tmp_path / "w.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS a")
    warmed: list[str] = []
    snapshots = Snapshots(db, tmp_path / "snaps", every=0.0, on_new=lambda old, new: warmed.append(old))
    first = snapshots.current()
    time.sleep(0.05)
    # As a load does: opening waits while a background look holds the file for a moment.
    from training_roi.warehouse.connection import connect

    writer = connect(db)
    writer.raw_sql("INSERT INTO t VALUES (2)")
    writer.disconnect()
    deadline = time.monotonic() + 30
    while snapshots.current().path == first.path:
        assert time.monotonic() < deadline, "no new snapshot within 30 s"
        time.sleep(0.05)
    assert snapshots.current().sql("SELECT count(*) FROM t") == [(2,)]
    assert warmed == [str(first.path)]
    snapshots.close()


def test_the_commands_add_a_user_and_serve_the_study_on_the_loopback_address(served: dict[str, Any],
                                                                              tmp_path: Path) -> None:
    import urllib.error
    import urllib.request

    state = tmp_path / "state.sqlite"
    command = [sys.executable, "-m", "training_roi.cli"]
    added = subprocess.run([*command, "users", "add", "ana", "--role", "analyst", "--db", str(served["db"]),
                            "--state", str(state)], capture_output=True, text=True, timeout=120)
    assert added.returncode == 0, added.stderr
    lines = added.stdout.splitlines()
    token = lines[next(i for i, line in enumerate(lines) if "will not be shown again" in line) + 1].strip()
    with serving(served["db"], state, served["out"]) as (base, printed):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/api/v1/programs", timeout=10)
        assert refused.value.code == 401
        request = urllib.request.Request(f"{base}/api/v1/programs", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=30) as r:
            programs = json.loads(r.read())
        assert [p["study_hash"] for p in programs] == [served["result"]["study"]["hash"]]
    assert base in printed[0]


def _wilson(successes: float, trials: float, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson's score interval for one proportion, written out."""
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z / (1 + z * z / trials) * (p * (1 - p) / trials + z * z / (4 * trials * trials)) ** 0.5
    return centre - half, centre + half


def test_the_drill_down_carries_the_answer_and_its_intervals_from_org_to_rep(served: dict[str, Any]) -> None:
    client, result, tokens = served["client"], served["result"], served["tokens"]
    h = result["study"]["hash"]
    org = client.get(f"/api/v1/studies/{h}/drill", headers=_auth(tokens["analyst"])).json()
    did = result["headline"]["did"]
    assert org["org"]["effect"] == did["estimate"] and org["org"]["interval"] == [did["ci_low"], did["ci_high"]]
    assert org["org"]["trained_units"] == result["headline"]["trained_units"]
    assert sum(t["trained_units"] for t in org["teams"]) == org["org"]["trained_units"]
    for t in org["teams"]:  # never a point without its interval
        assert (t["effect"] is None) == (t["interval"] is None)
        assert t["verdict"] == "not established" or (t["interval"][0] > 0 or t["interval"][1] < 0)
    learners = {r["unit_id"]: r for r in result["headline"]["learners"]}
    seen = 0
    for t in org["teams"]:
        reps = client.get(f"/api/v1/studies/{h}/drill/teams/{t['team']}", headers=_auth(tokens["analyst"])).json()
        for r in reps["reps"]:
            mine = learners[r["key"]]  # the report's per-learner table, built apart from the drill-down
            assert r["trained_baseline"] == pytest.approx(mine["baseline_conversion"], abs=1e-12)
            assert r["trained_post"] == pytest.approx(mine["post_conversion"], abs=1e-12)
            assert (r["effect"] is None) == (r["interval"] is None)
            seen += 1
    assert seen == len(learners)
    some = next(iter(learners))
    rep = client.get(f"/api/v1/studies/{h}/drill/reps/{some}", headers=_auth(tokens["analyst"])).json()
    assert rep["trained_on"] == learners[some]["completion_date"]


def test_a_reps_interval_is_newcombes_from_two_wilson_intervals() -> None:
    from types import SimpleNamespace

    import numpy as np

    from training_roi.evaluation.drill import Grouping, rep_rows
    from training_roi.measure import GroupWindows

    treated = GroupWindows(units=("r1",), base_successes=np.array([9.0]), base_trials=np.array([30.0]),
                           post_successes=np.array([17.0]), post_trials=np.array([34.0]))
    comparison = GroupWindows(units=("c1", "c2"), base_successes=np.array([5.0, 6.0]),
                              base_trials=np.array([20.0, 20.0]), post_successes=np.array([6.0, 6.0]),
                              post_trials=np.array([20.0, 20.0]))
    team = Grouping(by="team", group_of={"r1": "t", "c1": "t", "c2": "t"},
                    members={"t": frozenset({"r1", "c1", "c2"})}, names={})
    d = SimpleNamespace(panel=SimpleNamespace(treated=treated, comparison=comparison), groupings={"team": team},
                        treated_at={"r1": 0}, comparison_at={"c1": 0, "c2": 1}, unit_names={"r1": "Rep One"},
                        confidence=0.95)
    (row,) = rep_rows(d, "t")  # type: ignore[arg-type]
    l1, u1 = _wilson(17, 34)
    l0, u0 = _wilson(9, 30)
    p1, p0 = 17 / 34, 9 / 30
    low = (p1 - p0) - ((p1 - l1) ** 2 + (u0 - p0) ** 2) ** 0.5
    high = (p1 - p0) + ((u1 - p1) ** 2 + (p0 - l0) ** 2) ** 0.5
    assert row.effect == pytest.approx(p1 - p0) and row.interval == pytest.approx((low, high), abs=1e-9)
    assert row.verdict == ("improved" if low > 0 else "not established")
    assert (row.comparison_baseline, row.comparison_post) == (pytest.approx(11 / 40), pytest.approx(12 / 40))


def test_a_viewer_drills_to_teams_without_names_an_analyst_to_the_deal(served: dict[str, Any]) -> None:
    client, result, tokens, db = served["client"], served["result"], served["tokens"], served["db"]
    h = result["study"]["hash"]
    seen = client.get(f"/api/v1/studies/{h}/drill", headers=_auth(tokens["viewer"]))
    assert seen.status_code == 200
    with duckdb.connect(str(db), read_only=True) as con:
        names = {n for (n,) in con.sql("SELECT name FROM crm_user WHERE name IS NOT NULL").fetchall()}
    assert not [n for n in names if n in seen.text]
    teams = client.get("/api/v1/kpis?kpi=win_rate&grain=team&limit=100000", headers=_auth(tokens["viewer"]))
    assert teams.status_code == 200 and teams.json() and not [n for n in names if n in teams.text]
    team = client.get(f"/api/v1/studies/{h}/drill", headers=_auth(tokens["analyst"])).json()["teams"][0]["team"]
    assert client.get(f"/api/v1/studies/{h}/drill/teams/{team}", headers=_auth(tokens["viewer"])).status_code == 403
    reps = client.get(f"/api/v1/studies/{h}/drill/teams/{team}", headers=_auth(tokens["analyst"])).json()["reps"]
    rep = client.get(f"/api/v1/studies/{h}/drill/reps/{reps[0]['key']}", headers=_auth(tokens["analyst"])).json()
    with duckdb.connect(str(db), read_only=True) as con:
        (count,) = con.execute("""SELECT count(*) FROM crm_opportunity WHERE owner_id = ? AND NOT is_deleted
                                  AND CAST(created_at AS DATE) >= ? AND CAST(created_at AS DATE) < ?""",
                               [rep["unit"], rep["baseline_from"], rep["window_until"]]).fetchone()
    assert len(rep["deals"]) == count > 0
    import polars as pl
    touches = pl.read_csv(served["out"] / "attribution.csv", infer_schema_length=None)
    deal = next(d["opportunity_id"] for d in rep["deals"] if d["opportunity_id"] in set(touches["opportunity_id"]))
    got = client.get(f"/api/v1/studies/{h}/drill/deals/{deal}", headers=_auth(tokens["analyst"])).json()
    assert len(got["touches"]) == touches.filter(pl.col("opportunity_id") == deal).height
    # The pages, clicked down as an analyst.
    client.cookies.clear()
    assert sign_in(client, "analyst", "analyst-secret-1").status_code == 303
    for url, expect in ((f"/drill/{h}", "Win rate, org and teams"), (f"/drill/{h}/teams/{team}", reps[0]["name"]),
                        (f"/drill/{h}/reps/{rep['unit']}", "Training events"), (f"/drill/{h}/deals/{deal}", deal)):
        page = client.get(url)
        assert page.status_code == 200 and expect in page.text, url
    client.cookies.clear()


def test_kpis_come_a_page_at_a_time_and_the_pages_make_the_whole_csv(served: dict[str, Any]) -> None:
    import io

    import polars as pl

    client, auth = served["client"], _auth(served["tokens"]["analyst"])
    whole = pl.read_csv(io.BytesIO(client.get("/api/v1/kpis?kpi=win_rate&grain=rep&format=csv", headers=auth)
                                   .content), infer_schema_length=None)
    url, rows, pages = "/api/v1/kpis?kpi=win_rate&grain=rep&limit=100", [], 0
    while url:
        page = client.get(url, headers=auth)
        assert int(page.headers["x-total-count"]) == whole.height
        rows += page.json()
        pages += 1
        link = page.headers.get("link")
        url = link.split(">")[0].lstrip("<").replace("http://testserver", "") if link else ""
    assert pages == -(-whole.height // 100) and len(rows) == whole.height > 100
    assert [r["grain_id"] for r in rows] == whole["grain_id"].to_list()


def test_the_quarantine_is_browsable_by_source_and_reason_by_analysts_only(served: dict[str, Any]) -> None:
    client, tokens, db = served["client"], served["tokens"], served["db"]
    with duckdb.connect(str(db), read_only=True) as con:
        (total,) = con.sql("SELECT count(*) FROM quarantine").fetchone()
        source, reason = con.sql("SELECT source, reason FROM quarantine ORDER BY source LIMIT 1").fetchone()
        (same,) = con.execute("SELECT count(*) FROM quarantine WHERE source = ? AND contains(reason, ?)",
                              [source, reason[:12]]).fetchone()
    assert total > 0
    auth = _auth(tokens["analyst"])
    rows, offset = [], 0
    while True:
        page = client.get(f"/api/v1/quarantine?limit=2&offset={offset}", headers=auth).json()
        assert page["total"] == total
        rows += page["rows"]
        offset += 2
        if offset >= total:
            break
    assert len(rows) == total and {"source", "source_file", "source_line", "field", "reason", "raw"} <= set(rows[0])
    from urllib.parse import quote
    picked = client.get(f"/api/v1/quarantine?source={quote(source)}&reason={quote(reason[:12])}", headers=auth).json()
    assert picked["total"] == same and all(r["source"] == source for r in picked["rows"])
    assert client.get("/api/v1/quarantine", headers=_auth(tokens["viewer"])).status_code == 403


def test_the_study_page_shows_sensitivity_cost_and_windows_as_the_result_holds_them(served: dict[str, Any]) -> None:
    from decimal import Decimal

    from training_roi._format import money, percent

    client, result = served["client"], served["result"]
    client.cookies.clear()
    assert sign_in(client, "viewer", "viewer-secret-1").status_code == 303
    text = client.get(f"/studies/{result['study']['hash']}").text
    for row in result["sensitivity"]:
        assert percent(Decimal(row["roi_pct"])) in text and row["assumption"].replace("'", "&#39;") in text
    for window in result["windows"]:
        assert f"{window['window_days']} days" in text and percent(Decimal(window["roi_pct"])) in text
    assert money(Decimal(result["costs"]["total"])) in text
    assert not [p for p in _people(result) if p in text]
    client.cookies.clear()


def test_the_quality_page_shows_each_live_sync_and_its_lag_counted_when_asked(served: dict[str, Any]) -> None:
    from datetime import UTC, datetime, timedelta

    from training_roi.web.api import with_lag

    client, db = served["client"], served["db"]
    finished = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3, minutes=5)
    with duckdb.connect(str(db)) as con:
        con.execute("INSERT INTO sync_run (run_id, source, kind, endpoint, started, finished, status, pages, "
                    "statements, loaded, quarantined, error) VALUES ('r1', 'lrs-main', 'lrs', "
                    "'https://lrs.example.com/xAPI/', ?, ?, 'ok', 2, 10, 10, 0, NULL)",
                    [finished - timedelta(minutes=1), finished])
        con.execute("INSERT INTO sync_state (source, kind, endpoint, watermark, overlap_ids, updated_at) VALUES "
                    "('lrs-main', 'lrs', 'https://lrs.example.com/xAPI/', ?, '[]', ?)", [finished, finished])
    viewer = _auth(served["tokens"]["viewer"])
    asked = datetime.now(UTC)
    syncs = client.get("/api/v1/quality", headers=viewer).json()["syncs"]
    assert [s["source"] for s in syncs] == ["lrs-main"]
    lag = syncs[0]["lag_seconds"]
    assert (asked - finished).total_seconds() - 1 <= lag <= (datetime.now(UTC) - finished).total_seconds() + 1
    # Counted to the moment asked, not to when the snapshot's figures were made.
    later = with_lag({"syncs": syncs}, asked + timedelta(days=2))["syncs"][0]["lag_seconds"]
    assert later == pytest.approx((asked + timedelta(days=2) - finished).total_seconds(), abs=1)
    assert sign_in(client, "viewer", "viewer-secret-1").status_code == 303
    page = client.get("/quality").text
    assert "Live syncs" in page and "lrs-main" in page and finished.strftime("%Y-%m-%d %H:%M") in page
    assert "3.1 h" in page  # the lag in words: 3 h 5 min is 3.08 h
    client.cookies.clear()


def test_the_quality_page_shows_the_last_push_to_each_crm(served: dict[str, Any]) -> None:
    from datetime import UTC, datetime, timedelta

    client, db = served["client"], served["db"]
    finished = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    with duckdb.connect(str(db)) as con:
        for run, ended, written, failed in (("p1", finished - timedelta(days=1), 40, 0), ("p2", finished, 1234, 3)):
            con.execute("INSERT INTO push_run (run_id, target, object, endpoint, study, started, finished, status, "
                        "persons, changed, written, failed, error) VALUES (?, 'hs', 'contacts', "
                        "'https://api.hubapi.com/crm/v3/objects/contacts/batch/update', 'Academy (abc)', ?, ?, ?, "
                        "2000, ?, ?, ?, NULL)", [run, ended - timedelta(minutes=1), ended,
                                                 "failed" if failed else "ok", written + failed, written, failed])
    pushes = client.get("/api/v1/quality", headers=_auth(served["tokens"]["viewer"])).json()["pushes"]
    assert [(p["target"], p["written"], p["failed"], p["status"]) for p in pushes] == [("hs", 1234, 3, "failed")]
    assert sign_in(client, "viewer", "viewer-secret-1").status_code == 303
    page = client.get("/quality").text
    assert "Pushes to the CRM" in page and finished.strftime("%Y-%m-%d %H:%M") in page
    assert "1,234" in page and ">3<" in page
    client.cookies.clear()
