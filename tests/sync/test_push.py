"""Pushing training facts into Salesforce (a local org speaking the REST API): what is written, idempotence, failures.

The expected values are worked out here from the warehouse with SQL (each rep's first completion
of the program's course, the study's holdout list) and from the report's own verdict, never
from the code that pushes.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from tests.sync.salesforce_server import Org, add_fields, serve
from training_roi.cli import app
from training_roi.errors import SyncConfigError, TrainingRoiError
from training_roi.simulate import simulate
from training_roi.sync import load_config
from training_roi.sync.push import push_config

CLIENT_ID = "cid-" + uuid.uuid4().hex
SECRET = "cs-" + uuid.uuid4().hex  # random, so finding either in any output can only mean a leak
REFRESH = "rt-" + uuid.uuid4().hex
FIELDS = {"program": "Training_Program__c", "completed": "Training_Completed__c", "cohort": "Training_Cohort__c",
          "holdout": "Training_Holdout__c", "effect": "Training_Effect__c"}
TYPES = {"Training_Program__c": "string", "Training_Completed__c": "date", "Training_Cohort__c": "string",
         "Training_Holdout__c": "boolean", "Training_Effect__c": "string"}
runner = CliRunner()


@dataclass(frozen=True)
class World:
    """A simulated org's exports, its warehouse, and two reported studies of its program."""

    exports: Path
    db: Path
    activity: str
    program: str
    holdout: list[str]
    established: Path
    """The study whose win-rate effect the report established."""
    unsettled: Path
    """The same program with a holdout group and a threshold the effect does not reach."""


def _report(folder: Path, db: Path, name: str, settings: dict[str, Any]) -> Path:
    study = folder / f"{name}.yaml"
    study.write_text(yaml.safe_dump(settings), encoding="utf-8")
    out = folder / f"{name}-out"
    done = runner.invoke(app, ["report", str(study), "--db", str(db), "--out", str(out)])
    assert done.exit_code == 0, done.output
    return study


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    folder = tmp_path_factory.mktemp("push")
    exports = folder / "data"
    simulate(exports, reps=40, months=14, seed=11, scenario="randomised", effect_scale=4.0)
    truth = json.loads((exports / "truth.json").read_text())
    db = folder / "roi.duckdb"
    done = runner.invoke(app, ["ingest", str(exports), "--db", str(db)])
    assert done.exit_code == 0, done.output
    trained = set(pl.read_csv(exports / "truth_trained.csv", infer_schema=False)["user_id"].to_list())
    owners = set(pl.read_csv(exports / "crm" / "Opportunity.csv", infer_schema=False)["OwnerId"].to_list())
    holdout = sorted(owners - trained)[:5]
    program = truth["program"]["name"]
    activity = truth["program"]["course_activity_id"]
    base = {"program": {"name": program, "activities": [activity]},
            "costs": {"participant_time": {"hourly_rate": 60}}, "isolation": {"bootstrap_replicates": 200, "seed": 1}}
    established = _report(folder, db, "established", {"name": "Established", **base})
    unsettled = _report(folder, db, "unsettled", {
        "name": "Unsettled", **base, "comparison": {"design": "holdout", "holdout": holdout},
        "threshold": {"min_relative_change": 0.9}})
    return World(exports, db, activity, program, holdout, established, unsettled)


@pytest.fixture
def org(world: World) -> Iterator[Org]:
    o = Org(CLIENT_ID, SECRET, REFRESH)
    o.seed(world.exports)
    add_fields(o, "User", **TYPES)
    yield from serve(o)


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in {"SF_CLIENT_ID": CLIENT_ID, "SF_CLIENT_SECRET": SECRET, "SF_REFRESH_TOKEN": REFRESH}.items():
        monkeypatch.setenv(k, v)


@pytest.fixture
def db(world: World, tmp_path: Path) -> Path:
    """A copy of the warehouse, so a test's pushes and changes stay its own."""
    return Path(shutil.copy(world.db, tmp_path / "roi.duckdb"))


def write_config(path: Path, org: Org, study: Path, fields: dict[str, str] | None = None, **push: Any) -> Path:
    source = {"name": "sf", "kind": "salesforce", "instance_url": org.url, "api_version": "62.0",
              "auth": {"grant": "refresh_token", "client_id_env": "SF_CLIENT_ID",
                       "client_secret_env": "SF_CLIENT_SECRET", "refresh_token_env": "SF_REFRESH_TOKEN"},
              "backoff": 0.01}
    section = {"target": "sf", "object": "User", "fields": fields or FIELDS, "study": str(study),
               "results": str(study.with_name(study.stem + "-out")), "batch_size": 7, **push}
    path.write_text(yaml.safe_dump({"sources": [source], "push": section}), encoding="utf-8")
    return path


def run_push(config: Path, db: Path, *args: str) -> Any:
    result = runner.invoke(app, ["push", "--config", str(config), "--db", str(db), *args])
    for secret in (CLIENT_ID, SECRET, REFRESH):
        assert secret not in result.output
    return result


def completions(db: Path, activity: str) -> dict[str, str]:
    """Each CRM user's first completed or passed record of the course, as a UTC day."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        rows = con.execute(
            "SELECT li.crm_user_id, CAST(min(r.occurred_at) AS DATE) FROM learning_record r "
            "JOIN learner_identity li ON li.learner_key = r.learner_key "
            "WHERE r.activity_id = ? AND r.verb IN ('completed', 'passed') AND li.crm_user_id IS NOT NULL "
            "GROUP BY 1", [activity]).fetchall()
    finally:
        con.close()
    return {uid: day.isoformat() for uid, day in rows}


def expected(world: World, db: Path, effect: str, holdout: list[str]) -> dict[str, dict[str, str]]:
    """Every record's fields as the fake stores them once the facts are written (empty strings elsewhere)."""
    want: dict[str, dict[str, str]] = {}
    for uid, day in completions(db, world.activity).items():
        want[uid] = {"Training_Program__c": world.program, "Training_Completed__c": day,
                     "Training_Cohort__c": day[:7], "Training_Holdout__c": "true" if uid in holdout else "false",
                     "Training_Effect__c": effect}
    for uid in holdout:
        want.setdefault(uid, {"Training_Program__c": world.program, "Training_Completed__c": "",
                              "Training_Cohort__c": "", "Training_Holdout__c": "true", "Training_Effect__c": ""})
    return want


def org_values(org: Org) -> dict[str, dict[str, str]]:
    """The records whose training fields hold anything, as the fake stores them (a checkbox never set is false)."""
    out = {}
    for rid, row in org.tables["User"].items():
        values = {f: row.get(f, "") or ("false" if kind == "boolean" else "") for f, kind in TYPES.items()}
        if any(v not in ("", "false") for v in values.values()):
            out[rid] = values
    return out


def credited_words(study: Path) -> str:
    doc = json.loads((study.with_name(study.stem + "-out") / "result.json").read_text())
    credit = doc["headline"]["credit"]
    assert doc["headline"]["headline_kpi"] == "win_rate" and credit["is_credited"] is True
    return f"win rate +{credit['credited'] * 100:.1f} pts"


def query(db: Path, sql: str) -> list[dict[str, Any]]:
    """Rows of the warehouse as dictionaries (times left out: the rows are compared by their other columns)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        cur = con.execute(sql)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()


def audit(db: Path) -> list[dict[str, Any]]:
    return query(db, "SELECT * EXCLUDE (answered_at) FROM push_audit ORDER BY record_id, field")


def runs(db: Path) -> list[dict[str, Any]]:
    return query(db, "SELECT * EXCLUDE (started, finished) FROM push_run ORDER BY started")


def test_push_writes_each_trained_reps_facts_then_nothing_the_second_time(world: World, org: Org, db: Path,
                                                                            tmp_path: Path) -> None:
    config = write_config(tmp_path / "sync.yaml", org, world.established)
    first = run_push(config, db)
    assert first.exit_code == 0, first.output
    want = expected(world, db, credited_words(world.established), holdout=[])
    assert want and org_values(org) == want
    # Batches of at most the configured size, each record sent once with only its differing fields.
    assert all(len(r) <= 7 for r in org.push.requests)
    assert org.push.written() == len(want)
    sent = {r["id"]: {k for k in r if k not in ("attributes", "id")} for batch in org.push.requests for r in batch}
    assert sent == {uid: {f for f, v in values.items() if v not in ("", "false")} for uid, values in want.items()}
    rows = audit(db)
    assert len(rows) == sum(len(fields) for fields in sent.values())
    assert {r["outcome"] for r in rows} == {"written"} and all(r["old_value"] == "" for r in rows)
    assert {(r["record_id"], r["field"], r["new_value"]) for r in rows} == {
        (uid, f, want[uid][f]) for uid, fields in sent.items() for f in fields}
    requests = len(org.push.requests)
    second = run_push(config, db, "--json")
    assert second.exit_code == 0, second.output
    doc = json.loads(second.stdout)
    assert doc["changed"] == 0 and doc["written"] == 0 and doc["unchanged"] == len(want)
    assert len(org.push.requests) == requests
    assert [(r["status"], r["written"]) for r in runs(db)] == [("ok", len(want)), ("ok", 0)]
    history = runner.invoke(app, ["push", "--history", "--db", str(db), "--json"])
    assert [p["written"] for p in json.loads(history.stdout)["pushes"]] == [0, len(want)]


def test_dry_run_lists_the_changes_and_writes_nothing(world: World, org: Org, db: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "sync.yaml", org, world.established)
    result = run_push(config, db, "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    want = expected(world, db, credited_words(world.established), holdout=[])
    listed = {(r["record_id"], c["field"], c["old"], c["new"]) for r in doc["records"] for c in r["changes"]}
    stored = {"true": True, "false": False}
    assert listed == {(uid, f, None, stored.get(v, v)) for uid, values in want.items()
                      for f, v in values.items() if v not in ("", "false")}
    assert doc["dry_run"] is True and doc["written"] == 0
    assert org.push.requests == [] and org_values(org) == {}
    assert runs(db) == [] and audit(db) == []
    shown = run_push(config, db, "--dry-run")
    assert "Nothing was written." in shown.stdout and org.push.requests == []


def test_a_changed_completion_is_the_only_write(world: World, org: Org, db: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "sync.yaml", org, world.established)
    assert run_push(config, db).exit_code == 0
    moved = sorted(completions(db, world.activity))[0]
    con = duckdb.connect(str(db))
    con.execute("UPDATE learning_record SET occurred_at = occurred_at - INTERVAL 40 DAY WHERE activity_id = ? AND "
                "learner_key IN (SELECT learner_key FROM learner_identity WHERE crm_user_id = ?)",
                [world.activity, moved])
    con.close()
    day = completions(db, world.activity)[moved]
    before = len(org.push.requests)
    again = run_push(config, db)
    assert again.exit_code == 0, again.output
    assert org.push.requests[before:] == [[{"attributes": {"type": "User"}, "id": moved,
                                           "Training_Completed__c": day, "Training_Cohort__c": day[:7]}]]
    assert org_values(org)[moved]["Training_Completed__c"] == day


def test_the_effect_waits_for_the_study_to_establish_it(world: World, org: Org, db: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "sync.yaml", org, world.unsettled)
    result = run_push(config, db)
    assert result.exit_code == 0, result.output
    assert org_values(org) == expected(world, db, "not established", holdout=world.holdout)


def test_records_the_crm_refuses_fail_the_push_and_are_audited(world: World, org: Org, db: Path,
                                                              tmp_path: Path) -> None:
    trained = sorted(completions(db, world.activity))
    refused = trained[3]
    org.push.rejects[refused] = ("FIELD_INTEGRITY_EXCEPTION", "Training Cohort: value not of required format",
                                 ["Training_Cohort__c"])
    config = write_config(tmp_path / "sync.yaml", org, world.established)
    result = run_push(config, db)
    assert result.exit_code == 1
    assert f"{refused}: FIELD_INTEGRITY_EXCEPTION: Training Cohort: value not of required format" in result.output
    rows = audit(db)
    failed = {r["record_id"] for r in rows if r["outcome"] == "failed"}
    assert failed == {refused}
    assert all("FIELD_INTEGRITY_EXCEPTION" in r["error"] for r in rows if r["outcome"] == "failed")
    assert {r["record_id"] for r in rows if r["outcome"] == "written"} == set(trained) - {refused}
    assert refused not in org_values(org) and len(org_values(org)) == len(trained) - 1
    assert runs(db)[-1]["status"] == "failed" and runs(db)[-1]["failed"] == 1
    assert not any(secret in str([rows, runs(db)]) for secret in (CLIENT_ID, SECRET, REFRESH))
    del org.push.rejects[refused]
    retried = run_push(config, db, "--json")
    assert retried.exit_code == 0 and json.loads(retried.stdout)["written"] == 1


def test_a_field_the_org_lacks_stops_before_any_write(world: World, org: Org, db: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "sync.yaml", org, world.established,
                          fields={**FIELDS, "effect": "Training_Lift__c"})
    result = run_push(config, db)
    assert result.exit_code == 2
    assert "INVALID_FIELD" in result.output and "Training_Lift__c" in result.output
    assert org.push.requests == []


def test_the_push_section_is_checked(world: World, tmp_path: Path) -> None:
    org = Org(CLIENT_ID, SECRET, REFRESH, url="https://example.my.salesforce.com")
    config = write_config(tmp_path / "sync.yaml", org, world.established, fields={"effects": "X__c"})
    with pytest.raises(SyncConfigError, match=r"push\.fields\.effects: unknown fact"):
        push_config(load_config(config))
    config = write_config(tmp_path / "sync.yaml", org, world.established, object="Account")
    with pytest.raises(SyncConfigError, match=r"push\.object: expected User or Contact"):
        push_config(load_config(config))
    config = write_config(tmp_path / "sync.yaml", org, world.established, batch_size=500)
    with pytest.raises(SyncConfigError, match="at most 200"):
        push_config(load_config(config))


COURSE = "https://academy.example.com/course/onboarding"
ACME, GLOBEX, INITECH = "001000000000001AAA", "001000000000002AAA", "001000000000003AAA"


def write_customers(folder: Path) -> None:
    """A customer-education world's exports: three accounts, their contacts, three learners' completions."""
    from tests.builders import write

    write(folder / "crm" / "User.csv", "Id,Email\n005000000000001AAA,owner@vendor.com\n")
    write(folder / "crm" / "Account.csv", f"Id,Name\n{ACME},Acme\n{GLOBEX},Globex\n{INITECH},Initech\n")
    write(folder / "crm" / "Contact.csv", "Id,AccountId,Email\n"
          f"003000000000001AAA,{ACME},ann@acme.com\n003000000000002AAA,{ACME},bo@acme.com\n"
          f"003000000000003AAA,{ACME},cy@acme.com\n003000000000004AAA,{GLOBEX},di@globex.com\n"
          f"003000000000005AAA,{INITECH},ed@initech.com\n003000000000006AAA,{INITECH},fa@initech.com\n")
    write(folder / "lms" / "completions.csv",
          "learner_id,learner_email,course_id,course_title,program,enrolled_at,completed_at,score,passed,minutes\n"
          f"L1,ann@acme.com,{COURSE},Onboarding,Academy,2025-02-01,2025-03-20T09:00:00Z,90,true,60\n"
          f"L2,bo@acme.com,{COURSE},Onboarding,Academy,2025-02-01,2025-03-02T09:00:00Z,80,true,60\n"
          f"L4,di@globex.com,{COURSE},Onboarding,Academy,2025-02-01,2025-04-30T23:30:00Z,70,true,60\n")


def test_a_customer_study_writes_each_accounts_facts_on_its_contacts(tmp_path: Path, con: Any) -> None:
    """Contacts who learned carry their account's first completion; every contact of an account held out is held out."""
    from training_roi.evaluation.crm_facts import training_facts
    from training_roi.ingest.folder import ingest_folder
    from training_roi.linking import link
    from training_roi.study import Study, plan_study

    course, initech = COURSE, INITECH
    write_customers(tmp_path)
    ingest_folder(tmp_path, con)
    link(con)
    study = Study.model_validate({"name": "Academy", "program": {"activities": [course]},
                                  "population": {"unit": "account"},
                                  "comparison": {"design": "holdout", "holdout": [initech]}})
    result = {"study": {"hash": study.hash}, "headline": {"credit": {"is_credited": False, "credited": 0.0}}}
    facts = {p.record_id: p.values for p in training_facts(con, plan_study(study), result)}
    trained = {"program": "Academy", "holdout": False, "effect": "not established"}
    held = {"program": "Academy", "completed": None, "cohort": None, "holdout": True, "effect": None}
    assert facts == {
        "003000000000001AAA": {**trained, "completed": "2025-03-02", "cohort": "2025-03"},
        "003000000000002AAA": {**trained, "completed": "2025-03-02", "cohort": "2025-03"},
        "003000000000004AAA": {**trained, "completed": "2025-04-30", "cohort": "2025-04"},
        "003000000000005AAA": held, "003000000000006AAA": held,
    }
    with pytest.raises(TrainingRoiError, match="another version of the study"):
        training_facts(con, plan_study(study), {**result, "study": {"hash": "0" * 16}})


def test_a_customer_study_is_pushed_to_the_orgs_contacts(tmp_path: Path) -> None:
    """End to end on Contact, the second push sending nothing.

    Learners of a trained account carry its first completion; the contacts of the account held out are held out.
    """
    from training_roi.study import load_study

    course, initech = COURSE, INITECH
    data = tmp_path / "data"
    write_customers(data)
    db = tmp_path / "roi.duckdb"
    assert runner.invoke(app, ["ingest", str(data), "--db", str(db)]).exit_code == 0
    study = tmp_path / "academy.yaml"
    study.write_text(yaml.safe_dump({"name": "Academy", "program": {"activities": [course]},
                                     "population": {"unit": "account"},
                                     "comparison": {"design": "holdout", "holdout": [initech]}}))
    (tmp_path / "academy-out").mkdir()
    (tmp_path / "academy-out" / "result.json").write_text(json.dumps({
        "study": {"hash": load_study(study).hash}, "headline": {"credit": {"is_credited": False, "credited": 0.0}}}))
    firsts = {r["a"]: r["d"] for r in query(
        db, "SELECT li.crm_account_id AS a, strftime(min(r.occurred_at AT TIME ZONE 'UTC'), '%Y-%m-%d') AS d "
            "FROM learning_record r JOIN learner_identity li ON li.learner_key = r.learner_key "
            f"WHERE r.activity_id = '{course}' AND r.verb IN ('completed', 'passed') GROUP BY 1")}
    learners = query(db, "SELECT DISTINCT crm_contact_id AS c, crm_account_id AS a FROM learner_identity "
                         "WHERE crm_contact_id IS NOT NULL")
    want = {r["c"]: {"Training_Program__c": "Academy", "Training_Completed__c": firsts[r["a"]],
                     "Training_Cohort__c": firsts[r["a"]][:7], "Training_Holdout__c": "false",
                     "Training_Effect__c": "not established"} for r in learners if r["a"] in firsts}
    for r in query(db, f"SELECT contact_id AS c FROM crm_contact WHERE account_id = '{initech}'"):
        want[r["c"]] = {"Training_Program__c": "Academy", "Training_Completed__c": "", "Training_Cohort__c": "",
                        "Training_Holdout__c": "true", "Training_Effect__c": ""}
    org = Org(CLIENT_ID, SECRET, REFRESH)
    org.seed(data)
    add_fields(org, "Contact", **TYPES)
    server = serve(org)
    o = next(server)
    try:
        config = write_config(tmp_path / "sync.yaml", o, study, object="Contact")
        first = run_push(config, db)
        assert first.exit_code == 0, first.output
        values = {rid: {f: row.get(f, "") or ("false" if kind == "boolean" else "") for f, kind in TYPES.items()}
                  for rid, row in o.tables["Contact"].items()}
        assert {rid: v for rid, v in values.items() if any(x not in ("", "false") for x in v.values())} == want
        assert len(want) == 5 and o.push.written() == 5
        assert all(r["attributes"] == {"type": "Contact"} for batch in o.push.requests for r in batch)
        sent = len(o.push.requests)
        again = run_push(config, db, "--json")
        assert again.exit_code == 0 and json.loads(again.stdout)["written"] == 0 and len(o.push.requests) == sent
        assert [r["object"] for r in runs(db)] == ["Contact", "Contact"]
    finally:
        server.close()
