"""Pushing a customer-education study's facts into HubSpot contacts (a local account speaking the CRM API).

The warehouse holds HubSpot's own ids (as the HubSpot sync loads them: contacts by contact id). The
expected values are worked out here with SQL from the warehouse (each account's first completion of
the course, the contacts of the account held out) and from the report's verdict written for the test,
never from the code that pushes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from typer.testing import CliRunner

from tests.builders import write
from tests.sync import crm
from tests.sync.hubspot_server import Portal, serve
from training_roi.cli import app
from training_roi.study import load_study

TOKEN = "pat-na1-" + uuid.uuid4().hex  # random, so finding it in any output can only mean a leak
COURSE = "https://academy.example.com/course/onboarding"
ACME, GLOBEX, INITECH, UMBRELLA = "9000000000", "9000000001", "9000000002", "9000000003"
FIELDS = {"program": "training_program", "completed": "training_completed", "cohort": "training_cohort",
          "holdout": "training_holdout", "effect": "training_effect"}
TYPES = {"training_program": "string", "training_completed": "date", "training_cohort": "string",
         "training_holdout": "bool", "training_effect": "string"}
CREDITED = 0.031
runner = CliRunner()


@pytest.fixture
def world(tmp_path: Path) -> Path:
    """Exports under HubSpot's ids (owners, companies, contacts), the LMS's completions, ingested and linked."""
    data = tmp_path / "data"
    write(data / "crm" / "User.csv", "Id,Email,FirstName,LastName,Name,IsActive,CreatedDate\n"
          "41000000,owner@vendor.com,Olive,Owner,Olive Owner,true,2024-01-01T00:00:00.000Z\n")
    write(data / "crm" / "Account.csv", f"Id,Name,OwnerId\n{ACME},Acme,41000000\n{GLOBEX},Globex,41000000\n"
          f"{INITECH},Initech,41000000\n{UMBRELLA},Umbrella,41000000\n")
    write(data / "crm" / "Contact.csv", "Id,AccountId,Email,FirstName,LastName\n"
          f"5100000,{ACME},ann@acme.com,Ann,A\n5100001,{ACME},bo@acme.com,Bo,B\n5100002,{ACME},cy@acme.com,Cy,C\n"
          f"5100003,{GLOBEX},di@globex.com,Di,D\n5100004,{INITECH},ed@initech.com,Ed,E\n"
          f"5100005,{INITECH},fa@initech.com,Fa,F\n5100006,{UMBRELLA},gu@umbrella.com,Gu,G\n")
    write(data / "crm" / "Opportunity.csv", "Id,AccountId,OwnerId,Name,StageName,Amount,CloseDate,IsClosed,IsWon,"
          "Probability,CreatedDate\n")
    write(data / "lms" / "completions.csv",
          "learner_id,learner_email,course_id,course_title,program,enrolled_at,completed_at,score,passed,minutes\n"
          f"L1,ann@acme.com,{COURSE},Onboarding,Academy,2025-02-01,2025-03-20T09:00:00Z,90,true,60\n"
          f"L2,bo@acme.com,{COURSE},Onboarding,Academy,2025-02-01,2025-03-02T09:00:00Z,80,true,60\n"
          f"L4,di@globex.com,{COURSE},Onboarding,Academy,2025-02-01,2025-04-30T23:30:00Z,70,true,60\n")
    done = runner.invoke(app, ["ingest", str(data), "--db", str(tmp_path / "roi.duckdb")])
    assert done.exit_code == 0, done.output
    return data


@pytest.fixture
def portal(world: Path) -> Iterator[Portal]:
    p = Portal(TOKEN, "cid", "secret", "refresh")
    p.seed(world)
    p.push.add("contacts", **TYPES)
    yield from serve(p)


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBSPOT_TOKEN", TOKEN)


def study(folder: Path, established: bool, unit: str = "account") -> Path:
    """The study file, and beside it the result.json a report of it wrote: the effect established, or not."""
    path = folder / "academy.yaml"
    settings: dict[str, Any] = {"name": "Academy", "program": {"activities": [COURSE]},
                                "population": {"unit": unit}}
    if unit == "account":
        settings["comparison"] = {"design": "holdout", "holdout": [INITECH]}
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    out = folder / "academy-out"
    out.mkdir(exist_ok=True)
    headline = {"headline_kpi": "win_rate", "kpis": [{"kpi": "win_rate", "label": "win rate", "unit": "rate"}],
                "credit": {"is_credited": established, "credited": CREDITED if established else 0.0}}
    (out / "result.json").write_text(json.dumps({"study": {"hash": load_study(path).hash}, "headline": headline}))
    return path


def write_config(folder: Path, portal: Portal, study_file: Path, **push: Any) -> Path:
    source = {"name": "hs", "kind": "hubspot", "base_url": portal.url, "auth": {"access_token_env": "HUBSPOT_TOKEN"},
              "backoff": 0.01, "objects": ["owners", "companies", "contacts"]}
    section = {"target": "hs", "fields": FIELDS, "study": str(study_file),
               "results": str(study_file.with_name("academy-out")), "batch_size": 2, **push}
    path = folder / "sync.yaml"
    path.write_text(yaml.safe_dump({"sources": [source], "push": section}), encoding="utf-8")
    return path


def run_push(config: Path, db: Path, *args: str) -> Any:
    result = runner.invoke(app, ["push", "--config", str(config), "--db", str(db), *args])
    assert TOKEN not in result.output
    return result


def query(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def expected(db: Path, effect: str) -> dict[str, dict[str, str]]:
    """Each contact's properties once written (an empty property as empty text).

    Learners of a trained account carry its first completion; every contact of the account held out is held out.
    """
    firsts = query(db, "WITH firsts AS (SELECT li.crm_account_id AS account, CAST(min(r.occurred_at) AS DATE) AS day "
                       "FROM learning_record r JOIN learner_identity li ON li.learner_key = r.learner_key "
                       "WHERE r.activity_id = ? AND r.verb IN ('completed', 'passed') GROUP BY 1) "
                       "SELECT DISTINCT li.crm_contact_id, f.day FROM learner_identity li "
                       "JOIN firsts f ON f.account = li.crm_account_id WHERE li.crm_contact_id IS NOT NULL", COURSE)
    want = {cid: {"training_program": "Academy", "training_completed": day.isoformat(),
                  "training_cohort": day.isoformat()[:7], "training_holdout": "false", "training_effect": effect}
            for cid, day in firsts}
    for (cid,) in query(db, "SELECT contact_id FROM crm_contact WHERE account_id = ?", INITECH):
        want[cid] = {"training_program": "Academy", "training_completed": "", "training_cohort": "",
                     "training_holdout": "true", "training_effect": ""}
    return want


def stored(portal: Portal) -> dict[str, dict[str, str]]:
    return {rid: {p: r.custom.get(p, "") for p in TYPES} for rid, r in portal.records["contacts"].items()
            if r.custom}


def audit(db: Path) -> list[tuple[Any, ...]]:
    return query(db, "SELECT record_id, field, new_value, outcome, error FROM push_audit ORDER BY record_id, field")


def test_push_writes_each_contacts_facts_then_nothing_the_second_time(world: Path, portal: Portal,
                                                                     tmp_path: Path) -> None:
    db = tmp_path / "roi.duckdb"
    config = write_config(tmp_path, portal, study(tmp_path, established=True))
    first = run_push(config, db)
    assert first.exit_code == 0, first.output
    want = expected(db, f"win rate +{CREDITED * 100:.1f} pts")
    assert set(want) == {"5100000", "5100001", "5100003", "5100004", "5100005"}
    assert stored(portal) == want
    assert all(1 <= len(r) <= 2 for r in portal.push.requests) and portal.push.written() == len(want)
    rows = audit(db)
    assert {(rid, f, v) for rid, f, v, _o, _e in rows} == {
        (rid, f, v) for rid, values in want.items() for f, v in values.items() if v}
    assert {o for *_rest, o, _e in rows} == {"written"}
    requests = len(portal.push.requests)
    second = run_push(config, db, "--json")
    assert second.exit_code == 0, second.output
    doc = json.loads(second.stdout)
    assert (doc["changed"], doc["written"], doc["unchanged"]) == (0, 0, len(want))
    assert len(portal.push.requests) == requests
    assert query(db, "SELECT target, object, status, written, failed FROM push_run ORDER BY started") == [
        ("hs", "contacts", "ok", len(want), 0), ("hs", "contacts", "ok", 0, 0)]


def test_dry_run_reads_and_writes_nothing(world: Path, portal: Portal, tmp_path: Path) -> None:
    db = tmp_path / "roi.duckdb"
    config = write_config(tmp_path, portal, study(tmp_path, established=False))
    result = run_push(config, db, "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    want = expected(db, "not established")
    assert {r["record_id"] for r in doc["records"]} == set(want)
    assert doc["dry_run"] is True and portal.push.reads >= 1
    assert portal.push.requests == [] and stored(portal) == {}
    assert query(db, "SELECT count(*) FROM push_run") == [(0,)]


def test_a_value_hubspot_refuses_fails_that_record_only(world: Path, portal: Portal, tmp_path: Path) -> None:
    """The cohort is a dropdown offering March only: April's contact comes back in the 207 answer's errors."""
    db = tmp_path / "roi.duckdb"
    portal.push.add("contacts", training_cohort="enumeration:2025-03")
    config = write_config(tmp_path, portal, study(tmp_path, established=False))
    result = run_push(config, db)
    assert result.exit_code == 1
    want = expected(db, "not established")
    refused = {cid for cid, values in want.items() if values["training_cohort"] not in ("", "2025-03")}
    assert refused == {"5100003"}
    assert "5100003: VALIDATION_ERROR: INVALID_OPTION" in result.output
    assert stored(portal) == {cid: v for cid, v in want.items() if cid not in refused}
    rows = audit(db)
    assert {rid for rid, _f, _v, outcome, _e in rows if outcome == "failed"} == refused
    assert all("INVALID_OPTION" in (e or "") for *_rest, outcome, e in rows if outcome == "failed")
    assert query(db, "SELECT status, failed FROM push_run") == [("failed", 1)]
    assert TOKEN not in str(rows)
    (finished,) = query(db, "SELECT strftime(finished, '%Y-%m-%d %H:%M:%S') FROM push_run")[0]
    quality = runner.invoke(app, ["quality", "--db", str(db), "--json"])
    doc = json.loads(quality.stdout)
    assert [(p["target"], p["object"], p["written"], p["failed"], p["status"]) for p in doc["pushes"]] == [
        ("hs", "contacts", len(want) - len(refused), len(refused), "failed")]
    assert doc["pushes"][0]["finished"][:19] == finished.replace(" ", "T")
    assert any(w.startswith(f"push to hs of {finished[:10]}: 1 of {len(want)} record(s) refused")
               for w in doc["warnings"])
    shown = " ".join(runner.invoke(app, ["quality", "--db", str(db)]).stdout.split())
    assert "Pushes to the CRM" in shown and f"{finished} UTC" in shown


def test_a_record_answered_under_another_id_is_failed_not_given_another_records_error(
        world: Path, portal: Portal, tmp_path: Path) -> None:
    """In one batch: one contact refused by a rule, one merged into another (answered under the other's id)."""
    db = tmp_path / "roi.duckdb"
    config = write_config(tmp_path, portal, study(tmp_path, established=False), batch_size=100)
    refused, merged = "5100000", "5100001"
    portal.push.rejects[refused] = ("VALIDATION_ERROR", "blocked by a workflow rule")
    portal.push.merged[merged] = "5199999"
    result = run_push(config, db)
    assert result.exit_code == 1
    want = expected(db, "not established")
    assert {refused, merged} <= set(want) and len(portal.push.requests) == 1
    failed = {rid: e for rid, _f, _v, outcome, e in audit(db) if outcome == "failed"}
    assert set(failed) == {refused, merged}
    assert "blocked by a workflow rule" in failed[refused]
    assert failed[merged] == "not among the records HubSpot answered for"
    assert {rid for rid, _f, _v, outcome, _e in audit(db) if outcome == "written"} == set(want) - {refused, merged}
    assert query(db, "SELECT status, written, failed FROM push_run") == [("failed", len(want) - 2, 2)]


def test_a_property_the_account_lacks_stops_before_any_write(world: Path, portal: Portal, tmp_path: Path) -> None:
    db = tmp_path / "roi.duckdb"
    config = write_config(tmp_path, portal, study(tmp_path, established=False))
    cfg = yaml.safe_load(config.read_text())
    cfg["push"]["fields"]["effect"] = "training_lift"
    config.write_text(yaml.safe_dump(cfg))
    result = run_push(config, db)
    assert result.exit_code == 2
    assert "PROPERTY_DOESNT_EXIST" in result.output and "training_lift" in result.output
    assert portal.push.requests == []


def test_a_property_deleted_during_the_push_fails_its_batch(world: Path, portal: Portal, tmp_path: Path) -> None:
    """HubSpot refuses the whole batch (400 VALIDATION_ERROR naming PROPERTY_DOESNT_EXIST): each record failed."""
    from training_roi.evaluation.crm_facts import training_facts
    from training_roi.study import plan_study
    from training_roi.sync import load_config, open_push_target
    from training_roi.sync.push import push, push_config
    from training_roi.warehouse.connection import connect

    db = tmp_path / "roi.duckdb"
    study_file = study(tmp_path, established=False)
    cfg = load_config(write_config(tmp_path, portal, study_file, batch_size=100))
    settings = push_config(cfg)
    con = connect(str(db))
    try:
        facts = training_facts(con, plan_study(load_study(study_file)),
                               json.loads((tmp_path / "academy-out" / "result.json").read_text()))
        target = open_push_target(cfg, settings)
        try:
            info = push(con, target, facts, settings.fields, study="Academy",
                        progress=lambda line: "writing" in line and portal.push.properties["contacts"].pop(
                            "training_effect", None))
        finally:
            target.close()
    finally:
        con.disconnect()
    assert info.written == 0 and len(info.failed) == len(expected(db, "not established"))
    assert all("VALIDATION_ERROR" in (r.error or "") and "PROPERTY_DOESNT_EXIST" in (r.error or "")
               for r in info.failed)
    assert stored(portal) == {}


def test_a_rep_study_is_refused_saying_why(world: Path, portal: Portal, tmp_path: Path) -> None:
    db = tmp_path / "roi.duckdb"
    config = write_config(tmp_path, portal, study(tmp_path, established=False, unit="rep"))
    result = run_push(config, db)
    assert result.exit_code == 2
    said = " ".join(result.output.split())
    assert "owners hold no properties" in said and "crm/v3/objects/users" in said and "Salesforce" in said
    config = write_config(tmp_path, portal, study(tmp_path, established=False), object="users")
    result = run_push(config, db)
    assert result.exit_code == 2 and "owners hold no properties" in " ".join(result.output.split())
    assert portal.push.reads == 0 and portal.push.requests == []


def test_two_pushes_of_one_warehouse_never_overlap(world: Path, portal: Portal, tmp_path: Path) -> None:
    db = tmp_path / "roi.duckdb"
    config = write_config(tmp_path, portal, study(tmp_path, established=False))
    portal.faults = [("hold", None)]
    first = crm.sync_cli(config, db, {"HUBSPOT_TOKEN": TOKEN}, command="push")
    try:
        assert portal.held.wait(120), first.communicate(timeout=5)
        second = run_push(config, db)
        assert second.exit_code == 2
        said = " ".join(second.output.split())
        assert "another push of this warehouse is running" in said and f"pid {first.pid}" in said
        sync = crm.sync_cli(config, db, {"HUBSPOT_TOKEN": TOKEN})
        _, err = sync.communicate(timeout=120)
        assert sync.returncode == 2 and "another push of this warehouse is running" in " ".join(err.split())
    finally:
        portal.release.set()
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert TOKEN not in out + err
    assert stored(portal) == expected(db, "not established")
    assert query(db, "SELECT count(*), min(status) FROM push_run") == [(1, "ok")]
