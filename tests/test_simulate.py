"""The simulator writes the contract's formats, its mess, and a truth that the files confirm.

Checks read the files with the standard library (csv, json) and re-derive what they can
independently of the simulator's code: the id suffix algorithm, who is trained according to the
statements, and the truth from per-opportunity potential outcomes.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from training_roi.simulate import DEFAULT_SCENARIO, SCENARIOS, SimulationInfo, simulate

SMALL = {"reps": 60, "months": 12, "seed": 11}

CRM_FIELDS = {
    "User": ["Id", "Email", "FirstName", "LastName", "Name", "IsActive", "UserRoleId", "ManagerId", "Department",
             "Title", "CreatedDate"],
    "Account": ["Id", "Name", "Type", "Industry", "AnnualRevenue", "NumberOfEmployees", "OwnerId", "BillingState",
                "BillingCountry", "CreatedDate", "IsDeleted"],
    "Contact": ["Id", "AccountId", "Email", "FirstName", "LastName", "Title", "CreatedDate", "IsDeleted"],
    "Opportunity": ["Id", "AccountId", "OwnerId", "Name", "StageName", "Amount", "CloseDate", "CreatedDate",
                    "IsClosed", "IsWon", "Type", "LeadSource", "Probability", "IsDeleted"],
    "OpportunityHistory": ["OpportunityId", "StageName", "Amount", "CloseDate", "Probability", "CreatedDate",
                           "IsDeleted"],
    "Lead": ["Id", "OwnerId", "Status", "LeadSource", "CreatedDate", "IsConverted", "ConvertedDate",
             "ConvertedAccountId", "ConvertedContactId", "ConvertedOpportunityId", "IsDeleted"],
    "Task": ["Id", "OwnerId", "WhoId", "WhatId", "AccountId", "Subject", "TaskSubtype", "ActivityDate", "Status",
             "IsClosed", "CreatedDate", "CompletedDateTime", "IsDeleted"],
    "Case": ["Id", "AccountId", "ContactId", "OwnerId", "Status", "Priority", "Origin", "CreatedDate", "ClosedDate",
             "IsClosed", "CSAT__c", "IsDeleted"],
}
KEY_PREFIX = {"User": "005", "Account": "001", "Contact": "003", "Opportunity": "006", "OpportunityHistory": "008",
              "Lead": "00Q", "Task": "00T", "Case": "500"}
EXACT_HEADERS = {
    "lms/learners.csv": ["learner_id", "email", "name", "department", "title", "hire_date"],
    "lms/completions.csv": ["learner_id", "learner_email", "course_id", "course_title", "program", "enrolled_at",
                            "completed_at", "score", "passed", "minutes"],
    "surveys.csv": ["respondent_email", "role", "program", "level", "question", "score", "confidence",
                    "submitted_at"],
    "costs.csv": ["program", "category", "amount", "date", "note"],
}
SF_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000Z$")
SF_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
DURATION = re.compile(r"^PT(\d+H)?(\d+M)?(\d+S)?$")
XAPI_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}(Z|[+-]\d{2}:\d{2})$")
ADL = "http://adlnet.gov/expapi/verbs/"


# ------------------------------------------------------------------------------------------
# Fixtures and readers
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Simulate once per distinct set of arguments for the whole module."""
    cache: dict[tuple[Any, ...], tuple[Path, SimulationInfo]] = {}

    def _run(scenario: str = DEFAULT_SCENARIO, **kwargs: Any) -> tuple[Path, SimulationInfo]:
        args = {**SMALL, **kwargs}
        key = (scenario, *sorted(args.items()))
        if key not in cache:
            out = tmp_path_factory.mktemp(f"sim-{scenario}")
            cache[key] = (out, simulate(out, scenario=scenario, **args))
        return cache[key]

    return _run


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def read_lines(path: Path) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """Return (parsed statement objects, their raw lines, malformed lines)."""
    parsed, raw, bad = [], [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            bad.append(line)
            continue
        if isinstance(value, dict):
            parsed.append(value)
            raw.append(line)
        else:
            bad.append(line)
    return parsed, raw, bad


def distinct(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for s in statements:
        seen.setdefault(s["id"], s)
    return list(seen.values())


def truth_of(out: Path) -> dict[str, Any]:
    return json.loads((out / "truth.json").read_text(encoding="utf-8"))


def case_safe(id15: str) -> str:
    """Independent re-implementation of Salesforce's 15 → 18 character id suffix."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
    suffix = ""
    for chunk in (id15[0:5], id15[5:10], id15[10:15]):
        value = sum(1 << i for i, ch in enumerate(chunk) if "A" <= ch <= "Z")
        suffix += alphabet[value]
    return id15 + suffix


def utc_date(timestamp: str) -> date:
    return datetime.fromisoformat(timestamp).astimezone(UTC).date()


# ------------------------------------------------------------------------------------------
# API
# ------------------------------------------------------------------------------------------


def test_scenarios_are_named_and_described() -> None:
    assert {"selection", "randomised", "null"} <= set(SCENARIOS)
    assert DEFAULT_SCENARIO == "selection"
    assert all(isinstance(d, str) and d for d in SCENARIOS.values())


def test_unknown_scenario_names_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown scenario 'nope'") as info:
        simulate(tmp_path, scenario="nope")
    for name in SCENARIOS:
        assert name in str(info.value)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(("arg", "value"), [("reps", 0), ("months", 2), ("seed", -1), ("reps", 12.5)])
def test_bad_arguments_are_refused(tmp_path: Path, arg: str, value: Any) -> None:
    with pytest.raises(ValueError, match=arg):
        simulate(tmp_path, **{arg: value})


def test_info_prints_and_serialises(run: Any) -> None:
    out, info = run()
    assert info.out_dir == out and info.scenario == "selection" and info.reps == SMALL["reps"]
    text = str(info)
    assert "selection" in text and "crm/Opportunity.csv" in text
    data = json.loads(json.dumps(info.asdict()))
    assert data["files"] == info.files and data["out_dir"] == str(out)


def test_progress_is_reported_in_order(tmp_path: Path) -> None:
    calls: list[tuple[str, float]] = []
    simulate(tmp_path, reps=20, months=6, progress=lambda step, f: calls.append((step, f)))
    fractions = [f for _, f in calls]
    assert fractions == sorted(fractions)
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert all(isinstance(step, str) and step for step, _ in calls)


# ------------------------------------------------------------------------------------------
# Files and formats
# ------------------------------------------------------------------------------------------


def test_files_and_headers_follow_the_contract(run: Any) -> None:
    out, info = run()
    for obj, needed in CRM_FIELDS.items():
        header, _ = read_csv(out / "crm" / f"{obj}.csv")
        assert set(needed) <= set(header), (obj, set(needed) - set(header))
        assert any(h.endswith("__c") for h in header), obj
    for rel, header in EXACT_HEADERS.items():
        assert read_csv(out / rel)[0] == header, rel
    assert (out / "lms" / "statements.jsonl").is_file()
    assert (out / "truth.json").is_file()
    # The info's row counts are the files' data rows.
    for rel, rows in info.files.items():
        path = out / rel
        if rel.endswith(".csv"):
            assert len(read_csv(path)[1]) == rows, rel
        elif rel.endswith(".jsonl"):
            assert len(path.read_text(encoding="utf-8").splitlines()) == rows
    assert truth_of(out)["files"] == {k: v for k, v in info.files.items() if k != "truth.json"}


def test_salesforce_formats(run: Any) -> None:
    out, _ = run()
    raw = (out / "crm" / "Opportunity.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert not (out / "crm" / "Account.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    for obj in CRM_FIELDS:
        header, rows = read_csv(out / "crm" / f"{obj}.csv")
        assert rows, obj
        for col in header:
            values = [r[col] for r in rows if r[col] != ""]
            if col in {"CreatedDate", "CompletedDateTime", "ClosedDate"}:
                assert all(SF_DATETIME.match(v) for v in values), (obj, col)
            if col in {"CloseDate", "ActivityDate", "ConvertedDate"}:
                assert all(SF_DATE.match(v) for v in values), (obj, col)
            if col.startswith("Is"):
                assert set(values) <= {"true", "false"}, (obj, col)
        if "IsDeleted" in header and obj in {"Opportunity", "Task"}:
            assert 0 < sum(r["IsDeleted"] == "true" for r in rows) < 0.02 * len(rows), obj
    _, opps = read_csv(out / "crm" / "Opportunity.csv")
    assert any(r["Amount"] == "" for r in opps)
    assert all(r["Amount"] != "" for r in opps if r["IsWon"] == "true")
    assert any("," in r["Name"] for r in opps)
    assert all(r["StageName"] in {"Closed Won", "Closed Lost"} for r in opps if r["IsClosed"] == "true")
    assert all(r["Probability"] not in {"0", "100"} for r in opps if r["IsClosed"] == "false")
    # Names with quotes survive quoting: some account name or subject holds a double quote.
    _, accounts = read_csv(out / "crm" / "Account.csv")
    _, cases = read_csv(out / "crm" / "Case.csv")
    assert any('"' in r["Name"] for r in accounts) or any('"' in r["Subject"] for r in cases)
    assert {r["CSAT__c"] for r in cases if r["IsClosed"] == "false"} <= {""}
    assert {r["CSAT__c"] for r in cases if r["IsClosed"] == "true"} <= {"1", "2", "3", "4", "5"}


def test_ids_are_18_characters_with_a_correct_suffix(run: Any) -> None:
    out, _ = run()
    all_ids: set[str] = set()
    for obj, prefix in KEY_PREFIX.items():
        header, rows = read_csv(out / "crm" / f"{obj}.csv")
        ids = [r["Id"] for r in rows]
        assert all(len(i) == 18 and i.startswith(prefix) for i in ids), obj
        assert all(case_safe(i[:15]) == i for i in ids), obj
        assert len({i.lower() for i in ids}) == len(ids), obj  # unique even case-insensitively
        all_ids |= set(ids)
        for col in header:
            if col.endswith("Id") and col not in {"Id", "UserRoleId"}:
                refs = [r[col] for r in rows if r[col]]
                assert all(case_safe(v[:15]) == v for v in refs), (obj, col)
    _, opps = read_csv(out / "crm" / "Opportunity.csv")
    assert {r["OwnerId"] for r in opps} <= all_ids and {r["AccountId"] for r in opps} <= all_ids


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=62**9 - 1), min_size=1, max_size=50, unique=True))
def test_id_generator_matches_the_algorithm(counters: list[int]) -> None:
    from training_roi.simulate import _salesforce_ids  # the vectorised generator itself

    ids = _salesforce_ids("006", np.array(counters, dtype=np.int64)).to_list()
    assert all(case_safe(i[:15]) == i for i in ids)
    assert len({i.lower() for i in ids}) == len(counters)


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    def digest(folder: Path) -> dict[str, str]:
        return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(folder.rglob("*")) if p.is_file()}

    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    simulate(a, reps=30, months=8, seed=5)
    simulate(b, reps=30, months=8, seed=5)
    simulate(c, reps=30, months=8, seed=6)
    da, db, dc = digest(a), digest(b), digest(c)
    assert da == db
    assert set(da) == set(dc)
    for rel in ("crm/Opportunity.csv", "lms/statements.jsonl", "truth.json"):
        assert da[rel] != dc[rel], rel


# ------------------------------------------------------------------------------------------
# xAPI statements and their mess
# ------------------------------------------------------------------------------------------


def test_statements_are_valid_xapi(run: Any) -> None:
    out, _ = run()
    statements, _, bad = read_lines(out / "lms" / "statements.jsonl")
    truth = truth_of(out)
    assert len(bad) == truth["mess"]["malformed_lines"] >= 3
    verbs = Counter()
    for s in statements:
        assert UUID.match(s["id"]) and s["version"] == "1.0.3"
        actor = s["actor"]
        assert sum(k in actor for k in ("mbox", "account", "member")) == 1
        if "account" in actor:
            assert set(actor["account"]) == {"homePage", "name"}
        verb = s["verb"]
        assert verb["id"].startswith(ADL) and verb["display"]["en-US"] == verb["id"].removeprefix(ADL)
        verbs[verb["display"]["en-US"]] += 1
        obj = s["object"]
        if obj["objectType"] == "Activity":
            assert obj["id"].startswith("https://") and obj["definition"]["name"]["en-US"]
        else:
            assert obj["objectType"] == "StatementRef" and verb["id"] == ADL + "voided"
        assert XAPI_TS.match(s["timestamp"]) and s["stored"].endswith("Z")
        assert datetime.fromisoformat(s["stored"]) >= datetime.fromisoformat(s["timestamp"])
        result = s.get("result", {})
        if "duration" in result:
            assert DURATION.match(result["duration"]) and result["duration"] != "PT"
        if "score" in result:
            score = result["score"]
            assert score["min"] <= score["raw"] <= score["max"]
            assert score["scaled"] == pytest.approx(score["raw"] / score["max"])
            assert isinstance(result["success"], bool)
    assert {"launched", "initialized", "experienced", "completed", "passed", "failed", "terminated",
            "voided"} <= set(verbs)
    assert any(s["timestamp"].endswith(("-05:00", "-08:00", "-06:00", "+01:00")) for s in statements)
    assert any(s["timestamp"].endswith("Z") for s in statements)


def test_duplicates_are_identical_and_counted(run: Any) -> None:
    out, _ = run()
    statements, raw, _ = read_lines(out / "lms" / "statements.jsonl")
    counts = Counter(s["id"] for s in statements)
    extra = sum(n - 1 for n in counts.values())
    assert extra == truth_of(out)["mess"]["duplicate_statements"] >= 2
    by_id: dict[str, set[str]] = {}
    for s, line in zip(statements, raw, strict=True):
        by_id.setdefault(s["id"], set()).add(line)
    assert all(len(lines) == 1 for lines in by_id.values())


@pytest.mark.parametrize("scenario", ["selection", "crm_golive"])
def test_voided_statements_target_course_completions(run: Any, scenario: str) -> None:
    out, _ = run(scenario)
    truth = truth_of(out)
    statements = distinct(read_lines(out / "lms" / "statements.jsonl")[0])
    by_id = {s["id"]: s for s in statements}
    voids = [s for s in statements if s["verb"]["id"] == ADL + "voided"]
    assert len(voids) == truth["mess"]["voided_completions"] >= 2
    for v in voids:
        target = by_id[v["object"]["id"]]
        assert target["verb"]["id"] == ADL + "completed"
        assert target["object"]["id"] == truth["program"]["course_activity_id"]
        assert datetime.fromisoformat(v["timestamp"]) > datetime.fromisoformat(target["timestamp"])


@pytest.mark.parametrize("scenario", ["selection", "crm_golive"])
def test_trained_reps_follow_from_the_statements(run: Any, scenario: str) -> None:
    """Resolve actors like a careful reader would and re-derive every rep's completion date.

    Completions come from the statements and, for learners whose tool sends no xAPI, from the
    completion report's rows of the course.
    """
    out, _ = run(scenario)
    truth = truth_of(out)
    _, users = read_csv(out / "crm" / "User.csv")
    _, learners = read_csv(out / "lms" / "learners.csv")
    user_by_email = {u["Email"].lower(): u["Id"] for u in users}
    email_by_learner = {r["learner_id"]: r["email"].lower() for r in learners}
    statements = distinct(read_lines(out / "lms" / "statements.jsonl")[0])
    voided = {s["object"]["id"] for s in statements if s["verb"]["id"] == ADL + "voided"}
    first: dict[str, date] = {}
    for s in statements:
        if s["verb"]["id"] != ADL + "completed" or s["object"]["id"] != truth["program"]["course_activity_id"]:
            continue
        if s["id"] in voided:
            continue
        actor = s["actor"]
        email = (actor["mbox"].removeprefix("mailto:").lower() if "mbox" in actor
                 else email_by_learner.get(actor["account"]["name"]))
        user = user_by_email.get(email or "")
        if user is None:
            continue  # partner staff: trained, but not reps
        d = utc_date(s["timestamp"])
        first[user] = min(first.get(user, d), d)
    from_report = set()
    for row in read_csv(out / "lms" / "completions.csv")[1]:
        if row["course_id"] != truth["program"]["course_activity_id"] or not row["completed_at"]:
            continue
        user = user_by_email.get(row["learner_email"].lower())
        if user is not None:
            d = utc_date(row["completed_at"].replace("Z", "+00:00"))
            if user not in first:
                from_report.add(user)
            first[user] = min(first.get(user, d), d)
    assert from_report  # some reps' completions are in the report only
    _, trained = read_csv(out / "truth_trained.csv")
    assert {r["user_id"]: date.fromisoformat(r["completion_date"]) for r in trained} == first
    assert len(first) == truth["trained"]["reps"]
    _, reps = read_csv(out / "truth_reps.csv")
    voided_only = {r["user_id"] for r in reps if r["voided_only"] == "true"}
    assert voided_only and not voided_only & set(first)
    assert any(r["voided_then_real"] == "true" and r["user_id"] in first for r in reps)


def test_mess_counts_match_the_files(run: Any) -> None:
    out, _ = run()
    mess = truth_of(out)["mess"]
    statements = distinct(read_lines(out / "lms" / "statements.jsonl")[0])
    _, learners = read_csv(out / "lms" / "learners.csv")
    _, users = read_csv(out / "crm" / "User.csv")
    emails = {u["Email"].lower() for u in users}
    known = {r["learner_id"] for r in learners}
    account = [s for s in statements if "account" in s["actor"]]
    assert len(account) == mess["account_actor_statements"] > 0
    assert sum(s["actor"]["account"]["name"] not in known for s in account) == \
        mess["account_actor_unknown_learner_statements"] > 0
    mboxes = [s["actor"]["mbox"] for s in statements if "mbox" in s["actor"] and s["actor"].get("name") !=
              "LMS Administrator"]
    assert sum(m != m.lower() for m in mboxes) == mess["mixed_case_email_statements"] > 0
    assert sum("member" in s["actor"] for s in statements) == mess["group_actor_statements"] > 0
    assert sum(not s["timestamp"].endswith("Z") for s in statements) == mess["timestamps_with_offset"]
    assert len(statements) == mess["statements_distinct"]
    assert sum(r["email"].lower() not in emails for r in learners) == mess["learners_without_crm_user"] > 0
    assert sum(r["email"] != r["email"].lower() for r in learners) == mess["mixed_case_directory_emails"]
    for obj, n in mess["is_deleted_rows"].items():
        assert sum(r["IsDeleted"] == "true" for r in read_csv(out / "crm" / f"{obj}.csv")[1]) == n, obj
    _, opps = read_csv(out / "crm" / "Opportunity.csv")
    assert sum(r["Amount"] == "" for r in opps) == mess["opportunities_without_amount"]


def test_other_lms_files(run: Any) -> None:
    out, _ = run()
    truth = truth_of(out)
    _, completions = read_csv(out / "lms" / "completions.csv")
    assert completions and {r["program"] for r in completions} == {"Compliance", truth["program"]["name"]}
    course = [r for r in completions if r["program"] != "Compliance"]
    assert course and {r["course_id"] for r in course} == {truth["program"]["course_activity_id"]}
    for rows in (course, [r for r in completions if r["program"] == "Compliance"]):
        assert any(r["completed_at"] == "" for r in rows)
        assert all(r["score"] == "" and r["passed"] == "" for r in rows if r["completed_at"] == "")
    _, surveys = read_csv(out / "surveys.csv")
    levels = Counter(r["level"] for r in surveys)
    assert set(levels) == {"reaction", "application", "estimate"}
    assert {r["role"] for r in surveys} == {"learner", "manager"}
    for r in surveys:
        if r["level"] == "estimate":
            assert 0 <= float(r["score"]) <= 100 and 0 <= float(r["confidence"]) <= 100
        else:
            assert 1 <= int(r["score"]) <= 5 and r["confidence"] == ""
    _, costs = read_csv(out / "costs.csv")
    assert sum(r["program"] == "" for r in costs) == 1
    assert sum(line.startswith(",") for line in (out / "costs.csv").read_text().splitlines()) == 1  # not ""
    assert {"development", "licensing", "platform", "facilitation", "administration", "evaluation"} <= {
        r["category"] for r in costs}
    total = sum(float(r["amount"]) for r in costs if r["program"] == truth["program"]["name"])
    assert total == pytest.approx(truth["costs"]["program_total"])


# ------------------------------------------------------------------------------------------
# The truth
# ------------------------------------------------------------------------------------------


def _opportunities(out: Path) -> pl.DataFrame:
    """Observed opportunities joined to their potential outcomes and owners' completion dates."""
    _, opps = read_csv(out / "crm" / "Opportunity.csv")
    _, trained = read_csv(out / "truth_trained.csv")
    completion = {r["user_id"]: date.fromisoformat(r["completion_date"]) for r in trained}
    truth = pl.read_parquet(out / "truth_opportunities.parquet")
    observed = pl.DataFrame({
        "opportunity_id": [r["Id"] for r in opps],
        "obs_deleted": [r["IsDeleted"] == "true" for r in opps],
        "obs_closed": [r["IsClosed"] == "true" for r in opps],
        "obs_won": [r["IsWon"] == "true" for r in opps],
        "obs_amount": [float(r["Amount"]) if r["Amount"] else None for r in opps],
        "obs_cycle": [(date.fromisoformat(r["CloseDate"]) - utc_date(r["CreatedDate"])).days for r in opps],
        "since": [(utc_date(r["CreatedDate"]) - completion[r["OwnerId"]]).days if r["OwnerId"] in completion
                  else None for r in opps],
    })
    return observed.join(truth, on="opportunity_id", how="inner", validate="1:1")


def test_observed_outcomes_are_the_exposed_potential_outcomes(run: Any) -> None:
    out, _ = run()
    df = _opportunities(out)
    assert df.height == len(read_csv(out / "crm" / "Opportunity.csv")[1])
    exposed = df["since"].fill_null(0) >= 1
    assert (exposed == df["exposed"]).all()
    won = pl.Series(np.where(exposed, df["won1"], df["won0"])) & df["obs_closed"]
    assert (won == df["obs_won"]).all()
    cycle = np.where(exposed, df["cycle1"], df["cycle0"])
    assert (cycle == df["obs_cycle"].to_numpy()).all()
    amount = np.where(exposed, df["amount1"], df["amount0"])
    has = df["obs_amount"].is_not_null().to_numpy()
    assert np.allclose(amount[has], df["obs_amount"].to_numpy()[has])
    assert (df["obs_deleted"] == df["is_deleted"]).all() and (df["obs_closed"] == df["is_closed"]).all()


@pytest.mark.parametrize("scenario", ["selection", "staggered"])
def test_truth_equals_a_recomputation_from_potential_outcomes(run: Any, scenario: str) -> None:
    out, _ = run(scenario)
    truth = truth_of(out)
    df = _opportunities(out)
    for window in ("90", "180", "365"):
        w = df.filter(pl.col("exposed") & ~pl.col("obs_deleted") & (pl.col("since") <= int(window)))
        closed = w.filter(pl.col("obs_closed"))
        t = truth["truth"]["windows"][window]
        assert t["opportunities"] == w.height and t["closed"] == closed.height
        assert t["reps"] == w["owner_id"].n_unique()
        att = (closed["won1"].cast(pl.Int64) - closed["won0"].cast(pl.Int64)).mean()
        assert t["att_win_rate"] == pytest.approx(att, abs=1e-12)
        assert t["att_cycle_days"] == pytest.approx((closed["cycle1"] - closed["cycle0"]).mean(), abs=1e-12)
        revenue = sum(round(a * 100) for a in closed.filter(pl.col("won1"))["amount1"]) - sum(
            round(a * 100) for a in closed.filter(pl.col("won0"))["amount0"])
        assert t["incremental_revenue"] == pytest.approx(revenue / 100, abs=0.005)
        size = closed.filter(pl.col("won1"))["amount1"].mean() - closed.filter(pl.col("won0"))["amount0"].mean()
        assert t["att_avg_won_deal_size"] == pytest.approx(size, abs=0.01)
    assert truth["truth"]["primary_window_days"] == 180
    assert truth["truth"]["windows"]["180"]["incremental_revenue"] > 0


def test_null_scenario_truth_is_exactly_zero(run: Any) -> None:
    out, _ = run("null")
    truth = truth_of(out)
    assert truth["effects"] == {"win_logit": 0.0, "deal_size": 0.0, "cycle": 0.0, "ramp_days": 0}
    for window in truth["truth"]["windows"].values():
        assert window["opportunities"] > 0
        assert window["att_win_rate"] == 0.0 and window["att_cycle_days"] == 0.0
        assert window["att_avg_won_deal_size"] == 0.0
        assert window["incremental_revenue"] == 0.0 and window["incremental_revenue_booked"] == 0.0
        assert window["incremental_won_deals"] == 0
    df = pl.read_parquet(out / "truth_opportunities.parquet")
    assert (df["won0"] == df["won1"]).all() and (df["amount0"] == df["amount1"]).all()


def test_same_seed_same_pipeline_across_scenarios(run: Any) -> None:
    a = pl.read_parquet(run("selection")[0] / "truth_opportunities.parquet")
    b = pl.read_parquet(run("null")[0] / "truth_opportunities.parquet")
    assert a["opportunity_id"].equals(b["opportunity_id"]) and a["amount0"].equals(b["amount0"])
    assert a["won0"].equals(b["won0"])


def test_effect_scale_multiplies_the_effect_and_keeps_the_draws(run: Any) -> None:
    once, twice, none, harm = (pl.read_parquet(run("randomised", effect_scale=s)[0] / "truth_opportunities.parquet")
                               for s in (1.0, 2.0, 0.0, -1.0))
    # randomised: log-odds +0.12, deal size +3%, cycle −5%; twice that is +0.24, +6%, −10%.
    effects = truth_of(run("randomised", effect_scale=2.0)[0])["effects"]
    assert effects == pytest.approx({"win_logit": 0.24, "deal_size": 0.06, "cycle": 0.10, "ramp_days": 0})
    for df in (twice, none, harm):  # the same org, pipeline and untreated outcomes
        assert df["opportunity_id"].equals(once["opportunity_id"]) and df["won0"].equals(once["won0"])
        assert df["amount0"].equals(once["amount0"]) and df["exposed"].equals(once["exposed"])
    # One uniform per deal decides both outcomes, so a larger effect wins every deal a smaller one won.
    assert (twice["won1"] >= once["won1"]).all() and (twice["won1"] > once["won1"]).any()
    assert (harm["won1"] <= harm["won0"]).all() and (harm["won1"] < harm["won0"]).any()
    assert twice["amount1"].to_list() == pytest.approx([round(a * 1.06, 2) for a in twice["amount0"]])
    assert none["won1"].equals(none["won0"]) and none["amount1"].equals(none["amount0"])
    truth = truth_of(run("randomised", effect_scale=0.0)[0])["truth"]["windows"]["180"]
    assert truth["revenue_closing_in_window"] == 0 and truth["revenue_created_in_window"] == 0


@pytest.mark.parametrize(("scenario", "scale", "words"), [
    ("randomised", float("nan"), "effect_scale must be a finite number"),
    ("randomised", True, "effect_scale must be a finite number"),
    ("deal_size", -9.0, "effect_scale −9 makes scenario 'deal_size' change deal sizes by −108.0%"),
    ("randomised", 25.0, "change deal sizes by +75.0% and cycles by −125.0%"),
    ("customer", 2.0, "effect_scale applies to the sales course scenarios"),
    ("microlessons", 0.0, "not to 'microlessons'"),
])
def test_an_effect_scale_that_cannot_hold_is_refused(tmp_path: Path, scenario: str, scale: float, words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        simulate(tmp_path, reps=5, months=6, scenario=scenario, effect_scale=scale)


def test_randomised_trains_about_half(run: Any) -> None:
    out, _ = run("randomised", reps=200)
    _, reps = read_csv(out / "truth_reps.csv")
    eligible = [r for r in reps if r["eligible"] == "true"]
    enrolled = sum(r["enrolled"] == "true" for r in eligible)
    assert enrolled == round(0.5 * len(eligible))
    share = sum(r["trained"] == "true" for r in eligible) / len(eligible)
    assert 0.42 <= share <= 0.5
    assert len(truth_of(out)["trained"]["by_completion_month"]) >= 2  # staggered cohorts


def test_selection_scenario_sets_the_trap(run: Any) -> None:
    """Trained reps were better before training: a naive comparison credits the program for it."""
    out, _ = run("selection", reps=200)
    truth = truth_of(out)
    _, reps = read_csv(out / "truth_reps.csv")
    skill = {True: [], False: []}
    for r in reps:
        skill[r["trained"] == "true"].append(float(r["skill"]))
    assert np.mean(skill[True]) > np.mean(skill[False]) + 0.3
    trained = {r["user_id"] for r in reps if r["trained"] == "true"}
    rollout = date.fromisoformat(truth["program"]["rollout_start"])
    _, opps = read_csv(out / "crm" / "Opportunity.csv")
    pre = [r for r in opps if r["IsClosed"] == "true" and r["IsDeleted"] == "false"
           and utc_date(r["CreatedDate"]) < rollout]
    rate = {g: np.mean([r["IsWon"] == "true" for r in pre if (r["OwnerId"] in trained) == g]) for g in (True, False)}
    assert rate[True] > rate[False] + 0.02
    diag = truth["diagnostics"]
    assert diag["pre_period_win_rate_trained"] == pytest.approx(rate[True])
    # The naive comparisons are biased upwards relative to the true win-rate effect.
    att = truth["truth"]["windows"]["180"]["att_win_rate"]
    assert diag["naive_trained_minus_untrained_post"] > att
    assert diag["naive_before_after_trained_180d"] > att


def test_staggered_effect_grows_with_time_since_completion(run: Any) -> None:
    out, _ = run("staggered", reps=120)
    df = pl.read_parquet(out / "truth_opportunities.parquet").filter(pl.col("exposed"))
    lift = df.with_columns(lift=pl.col("p1") - pl.col("p0"))
    early = lift.filter(pl.col("days_since_completion") <= 60)["lift"].mean()
    late = lift.filter(pl.col("days_since_completion") >= 180)["lift"].mean()
    assert 0 < early < late
    truth = truth_of(out)
    assert truth["trained"]["reps"] / truth["trained"]["eligible_reps"] > 0.75


def test_truth_is_documented(run: Any) -> None:
    out, _ = run()
    truth = truth_of(out)
    assert {"scenario", "seed", "reps", "months", "start", "end", "program", "effects", "truth", "trained",
            "mess", "definitions"} <= set(truth)
    assert date.fromisoformat(truth["end"]) > date.fromisoformat(truth["start"]) + timedelta(days=300)
    documented = " ".join(truth["definitions"])
    for key in ("att_win_rate", "att_avg_won_deal_size", "att_cycle_days", "incremental_revenue",
                "duplicate_statements", "voided_completions", "malformed_lines"):
        assert key in documented, key


# ------------------------------------------------------------------------------------------
# Customer education: learners are contacts of customer accounts, the unit is the account
# ------------------------------------------------------------------------------------------

CUSTOMER = {"reps": 40, "months": 24, "seed": 11}


@pytest.fixture(scope="module")
def customer(run: Any) -> tuple[Path, dict[str, Any]]:
    out, _ = run("customer", **CUSTOMER)
    return out, truth_of(out)


@pytest.fixture(scope="module")
def customer_warehouse(customer: tuple[Path, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Any:
    from training_roi.ingest.folder import ingest_folder
    from training_roi.linking import link
    from training_roi.warehouse.connection import connect

    out, _ = customer
    con = connect(tmp_path_factory.mktemp("customer-wh") / "w.duckdb")
    info = ingest_folder(out, con)
    return con, info, link(con)


def _learners(out: Path) -> list[dict[str, str]]:
    return read_csv(out / "truth_learners.csv")[1]


def test_customer_scenario_is_described() -> None:
    assert "customer" in SCENARIOS and "account" in SCENARIOS["customer"]


def test_customer_crm_is_a_book_of_customers(customer: tuple[Path, dict[str, Any]]) -> None:
    out, truth = customer
    assert truth["unit"] == "account" and truth["scenario"] == "customer"
    _, users = read_csv(out / "crm" / "User.csv")
    _, accounts = read_csv(out / "crm" / "Account.csv")
    _, contacts = read_csv(out / "crm" / "Contact.csv")
    _, opps = read_csv(out / "crm" / "Opportunity.csv")
    assert all(a["Type"].startswith("Customer") and a["Industry"] and int(a["NumberOfEmployees"]) > 0
               for a in accounts)
    per_account = Counter(c["AccountId"] for c in contacts)
    assert set(per_account) == {a["Id"] for a in accounts}
    assert min(per_account.values()) == 1 and max(per_account.values()) == 6
    emails = [c["Email"] for c in contacts]
    assert len(set(emails)) == len(emails) and not set(emails) & {u["Email"] for u in users}
    # Renewals and upsells of existing accounts, owned by the account's manager, a CRM user.
    assert Counter(o["Type"] for o in opps).keys() == {"Renewal", "Upsell"}
    owner = {a["Id"]: a["OwnerId"] for a in accounts}
    assert all(o["OwnerId"] == owner[o["AccountId"]] for o in opps)
    title = {u["Id"]: u["Title"] for u in users}
    assert all("Account Manager" in title[o["OwnerId"]] for o in opps)


def test_customer_users_are_the_sales_orgs_own(run: Any, customer: tuple[Path, dict[str, Any]]) -> None:
    out, _ = customer
    sales, _ = run("selection", **CUSTOMER)
    mine = [(u["Id"], u["Email"]) for u in read_csv(out / "crm" / "User.csv")[1]]
    theirs = [(u["Id"], u["Email"]) for u in read_csv(sales / "crm" / "User.csv")[1]]
    assert mine == theirs


def test_customer_scenario_is_reproducible(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    simulate(a, reps=8, months=12, seed=3, scenario="customer")
    simulate(b, reps=8, months=12, seed=3, scenario="customer")
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files and files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files:
        assert hashlib.sha256((a / rel).read_bytes()).digest() == hashlib.sha256((b / rel).read_bytes()).digest(), rel


def test_customer_trained_accounts_follow_from_the_raw_files(customer: tuple[Path, dict[str, Any]]) -> None:
    """Resolve actors and completion rows to contacts with the standard library, as a careful reader would."""
    out, truth = customer
    course = truth["program"]["course_activity_id"]
    account_of = {c["Email"].lower(): c["AccountId"] for c in read_csv(out / "crm" / "Contact.csv")[1]}
    email_of = {r["learner_id"]: r["email"].lower() for r in read_csv(out / "lms" / "learners.csv")[1]}
    statements = distinct(read_lines(out / "lms" / "statements.jsonl")[0])
    voided = {s["object"]["id"] for s in statements if s["verb"]["id"] == ADL + "voided"}
    done: list[tuple[str, datetime]] = []  # (learner email, completion instant)
    for s in statements:
        if s["verb"]["id"] == ADL + "completed" and s["object"]["id"] == course and s["id"] not in voided:
            actor = s["actor"]
            email = (actor["mbox"].removeprefix("mailto:").lower() if "mbox" in actor
                     else email_of[actor["account"]["name"]])
            done.append((email, datetime.fromisoformat(s["timestamp"])))
    _, rows = read_csv(out / "lms" / "completions.csv")
    assert rows and {r["course_id"] for r in rows} == {course}
    done += [(r["learner_email"].lower(), datetime.fromisoformat(r["completed_at"].replace("Z", "+00:00")))
             for r in rows if r["completed_at"]]
    first: dict[str, date] = {}
    learners: dict[str, set[str]] = {}
    for email, when in done:
        account = account_of.get(email)
        if account is None:
            continue  # a colleague the CRM does not know: trains no account
        first[account] = min(first.get(account, when.astimezone(UTC).date()), when.astimezone(UTC).date())
        learners.setdefault(account, set()).add(email)
    _, trained = read_csv(out / "truth_trained.csv")
    assert {r["account_id"]: (date.fromisoformat(r["training_date"]), int(r["learners"])) for r in trained} == {
        a: (d, len(learners[a])) for a, d in first.items()}
    assert len(trained) == truth["trained"]["accounts"] > 20
    assert max(int(r["learners"]) for r in trained) >= 3  # several learners per account
    assert any(e not in account_of for e, _ in done)  # outsiders completed too
    assert truth["mess"]["voided_completions"] >= 2 and any(r["voided_only"] == "true" for r in _learners(out))


def test_customer_files_ingest_cleanly(customer: tuple[Path, dict[str, Any]], customer_warehouse: Any) -> None:
    _, truth = customer
    con, info, _ = customer_warehouse
    assert info.ok
    written = {Path(f).stem: n for f, n in truth["files"].items() if not f.startswith("truth")}
    assert {s.source for s in info.sources} == set(written) - {"statements"} | {"xapi"}
    for s in info.sources:
        assert s.rows_read == s.rows_loaded + s.rows_quarantined + s.rows_duplicate, s.source
        assert s.rows_read == written["statements" if s.source == "xapi" else s.source], s.source
    xapi = next(s for s in info.sources if s.source == "xapi")
    assert xapi.rows_duplicate == truth["mess"]["duplicate_statements"] >= 2
    assert xapi.rows_quarantined == truth["mess"]["malformed_lines"]
    st = con.table("lms_statement")
    assert st.filter(st.is_voided).count().to_pyarrow().as_py() == truth["mess"]["voided_completions"]


def test_customer_learners_link_to_their_contacts(customer: tuple[Path, dict[str, Any]],
                                                  customer_warehouse: Any) -> None:
    out, truth = customer
    con, _, linked = customer_warehouse
    ids = con.table("learner_identity").to_pyarrow().to_pylist()
    assert not any(r["crm_user_id"] for r in ids) and linked.ambiguous == 0
    expected = {r["email"]: (r["contact_id"] or None, r["account_id"] if r["is_contact"] == "true" else None)
                for r in _learners(out)}
    by_email = [r for r in ids if r["email_norm"] in expected]
    assert {r["email_norm"] for r in by_email} == set(expected)  # every academy learner has an identity
    assert all((r["crm_contact_id"], r["crm_account_id"]) == expected[r["email_norm"]] for r in by_email)
    assert sum(r["learner_key"].startswith("account:") and r["crm_contact_id"] is not None for r in ids) > 0
    assert linked.directory_learners_without_crm == truth["mess"]["learners_without_crm_contact"] > 0


def test_customer_trained_accounts_follow_from_the_warehouse(customer: tuple[Path, dict[str, Any]],
                                                             customer_warehouse: Any) -> None:
    from training_roi.measure import completions

    out, truth = customer
    con, _, _ = customer_warehouse
    course = truth["program"]["course_activity_id"]
    rec, ids = con.table("learning_record"), con.table("learner_identity")
    done = rec.filter((rec.verb == "completed") & (rec.activity_id == course))
    j = done.join(ids, "learner_key").filter(ids.crm_account_id.notnull())
    rows = j.group_by(account=j.crm_account_id, source=j.source).agg(
        first=j.occurred_at.min(), learners=j.learner_key.nunique()).to_pyarrow().to_pylist()
    derived: dict[str, tuple[str, int]] = {}
    first_source: dict[str, tuple[datetime, str]] = {}
    for r in rows:
        d, n = derived.get(r["account"], (r["first"].date().isoformat(), 0))
        derived[r["account"]] = (min(d, r["first"].date().isoformat()), n + r["learners"])
        first_source[r["account"]] = min(first_source.get(r["account"], (r["first"], r["source"])),
                                         (r["first"], r["source"]))
    _, trained = read_csv(out / "truth_trained.csv")
    expected = {r["account_id"]: (r["training_date"], int(r["learners"])) for r in trained}
    assert derived == expected
    assert {s for _, s in first_source.values()} == {"xapi", "completions"}  # both LMS sources train accounts
    product = {r["unit_id"]: (r["completed_at"].date().isoformat(), r["learners"])
               for r in completions(con, [course], unit="account").to_pyarrow().to_pylist()}
    assert product == expected


def _customer_opportunities(out: Path) -> pl.DataFrame:
    """Observed opportunities joined to their potential outcomes and their accounts' training dates."""
    _, opps = read_csv(out / "crm" / "Opportunity.csv")
    trained = {r["account_id"]: date.fromisoformat(r["training_date"]) for r in read_csv(out / "truth_trained.csv")[1]}
    observed = pl.DataFrame({
        "opportunity_id": [r["Id"] for r in opps],
        "obs_account": [r["AccountId"] for r in opps],
        "obs_type": [r["Type"] for r in opps],
        "obs_deleted": [r["IsDeleted"] == "true" for r in opps],
        "obs_closed": [r["IsClosed"] == "true" for r in opps],
        "obs_won": [r["IsWon"] == "true" for r in opps],
        "obs_amount": [float(r["Amount"]) if r["Amount"] else None for r in opps],
        "obs_cycle": [(date.fromisoformat(r["CloseDate"]) - utc_date(r["CreatedDate"])).days for r in opps],
        "since": [(utc_date(r["CreatedDate"]) - trained[r["AccountId"]]).days if r["AccountId"] in trained
                  else None for r in opps],
    })
    truth = pl.read_parquet(out / "truth_opportunities.parquet")
    return observed.join(truth, on="opportunity_id", how="inner", validate="1:1")


def test_customer_observed_outcomes_are_the_exposed_potential_outcomes(customer: tuple[Path, dict[str, Any]]) -> None:
    out, _ = customer
    df = _customer_opportunities(out)
    assert df.height == len(read_csv(out / "crm" / "Opportunity.csv")[1])
    assert (df["obs_account"] == df["account_id"]).all() and (df["obs_type"] == df["type"]).all()
    exposed = df["since"].fill_null(0) >= 1
    assert (exposed == df["exposed"]).all() and exposed.sum() > 50
    won = pl.Series(np.where(exposed, df["won1"], df["won0"])) & df["obs_closed"]
    assert (won == df["obs_won"]).all()
    assert (df["cycle0"] == df["obs_cycle"]).all() and (df["cycle1"] == df["cycle0"]).all()
    has = df["obs_amount"].is_not_null().to_numpy()
    assert np.allclose(df["amount0"].to_numpy()[has], df["obs_amount"].to_numpy()[has])
    # Training shifts the log-odds by the stated amount per type.
    effects = truth_of(out)["effects"]
    logit = np.log(df["p1"] / (1 - df["p1"])) - np.log(df["p0"] / (1 - df["p0"]))
    renewal = (df["type"] == "Renewal").to_numpy()
    assert np.allclose(logit.to_numpy()[renewal], effects["renewal_win_logit"])
    assert np.allclose(logit.to_numpy()[~renewal], effects["upsell_win_logit"])


def test_customer_truth_equals_a_recomputation_from_potential_outcomes(
        customer: tuple[Path, dict[str, Any]]) -> None:
    out, truth = customer
    df = _customer_opportunities(out)

    def cents(frame: pl.DataFrame, won: str, amount: str) -> int:
        return sum(round(a * 100) for a in frame.filter(pl.col(won))[amount])

    for window in ("90", "180", "365", "all"):
        w = df.filter(pl.col("exposed") & ~pl.col("obs_deleted"))
        if window != "all":
            w = w.filter(pl.col("since") <= int(window))
        closed = w.filter(pl.col("obs_closed"))
        t = truth["truth"]["windows"][window]
        assert (t["opportunities"], t["closed"]) == (w.height, closed.height) and closed.height > 0
        assert t["accounts"] == w["obs_account"].n_unique() and t["reps"] == w["owner_id"].n_unique()
        att = (closed["won1"].cast(pl.Int64) - closed["won0"].cast(pl.Int64)).mean()
        assert t["att_win_rate"] == pytest.approx(att, abs=1e-12)
        assert t["att_win_rate_expected"] == pytest.approx((closed["p1"] - closed["p0"]).mean(), abs=1e-12)
        revenue = cents(closed, "won1", "amount1") - cents(closed, "won0", "amount0")
        assert t["incremental_revenue"] == pytest.approx(revenue / 100, abs=0.005)
        for kind in ("Renewal", "Upsell"):
            part = closed.filter(pl.col("obs_type") == kind)
            by = t["by_type"][kind]
            assert by["closed"] == part.height
            assert by["incremental_revenue"] == pytest.approx(
                (cents(part, "won1", "amount1") - cents(part, "won0", "amount0")) / 100, abs=0.005)
        assert sum(b["incremental_revenue"] for b in t["by_type"].values()) == pytest.approx(t["incremental_revenue"])
    assert truth["truth"]["windows"]["all"]["incremental_revenue"] > 0


def test_customer_selection_sets_the_trap(customer: tuple[Path, dict[str, Any]]) -> None:
    """Bigger, more engaged accounts train: they would have won more without training too."""
    out, truth = customer
    accounts = pl.read_csv(out / "truth_accounts.csv")
    t, u = accounts.filter(pl.col("trained")), accounts.filter(~pl.col("trained"))
    assert t["engagement"].mean() > u["engagement"].mean() + 0.4
    assert t["employees"].median() > u["employees"].median()
    df = _customer_opportunities(out).join(accounts.select("account_id", "trained"), on="account_id")
    rollout = date.fromisoformat(truth["program"]["rollout_start"])
    pre = df.filter(pl.col("created_date") < rollout)
    assert not pre["exposed"].any()
    for kind in ("Renewal", "Upsell"):
        p0 = pre.filter(pl.col("type") == kind).group_by("trained").agg(pl.col("p0").mean())
        level = dict(zip(p0["trained"], p0["p0"], strict=True))
        assert level[True] > level[False] + 0.05, kind
    closed = pre.filter(pl.col("obs_closed") & ~pl.col("obs_deleted"))
    rate = closed.filter(pl.col("trained"))["obs_won"].mean()
    assert truth["diagnostics"]["pre_period_win_rate_trained"] == pytest.approx(rate)


def test_product_answers_a_customer_study(customer: tuple[Path, dict[str, Any]], customer_warehouse: Any) -> None:
    """The main job runs at the account level; its groups are the true trained and untrained accounts."""
    from training_roi.evaluation import evaluate
    from training_roi.study import Study

    out, truth = customer
    con, _, _ = customer_warehouse
    study = Study.model_validate({
        "name": "x",
        "program": {"name": truth["program"]["name"], "activities": [truth["program"]["course_activity_id"]]},
        "population": {"unit": "account"}, "costs": {"participant_time": {"hourly_rate": 60}},
    })
    result = evaluate(con, study)
    trained = {r["account_id"] for r in read_csv(out / "truth_trained.csv")[1]}
    with_deals = {r["AccountId"] for r in read_csv(out / "crm" / "Opportunity.csv")[1] if r["IsDeleted"] == "false"}
    assert result.primary.trained_units == len(trained)
    assert result.primary.comparison_units == len(with_deals - trained)
    assert {r.unit_id for r in result.primary.learners} == trained
    assert result.primary.did is not None and np.isfinite(result.primary.did.estimate)
    assert result.costs.total > 0


def test_customer_education_compares_customers_on_renewals(customer: tuple[Path, dict[str, Any]],
                                                           customer_warehouse: Any) -> None:
    """Accounts chosen by their fields, deals by their type: the groups and deals are exactly those, from the files."""
    from training_roi.evaluation import Evaluation, evaluate
    from training_roi.study import Study

    out, truth = customer
    con, _, _ = customer_warehouse
    accounts = read_csv(out / "crm" / "Account.csv")[1]
    direct = {r["Id"] for r in accounts if r["Type"] == "Customer - Direct" and r["IsDeleted"] == "false"}
    deals = [r for r in read_csv(out / "crm" / "Opportunity.csv")[1] if r["IsDeleted"] == "false"]
    renewing = {r["AccountId"] for r in deals if r["Type"] == "Renewal"}
    trained = {r["account_id"] for r in read_csv(out / "truth_trained.csv")[1]}
    study = Study.model_validate({
        "name": "x",
        "program": {"name": truth["program"]["name"], "activities": [truth["program"]["course_activity_id"]]},
        "population": {"unit": "account", "accounts": {"type": ["Customer - Direct"]},
                       "opportunity_types": ["Renewal"]},
        "isolation": {"bootstrap_replicates": 200},
    })
    result = evaluate(con, study)
    assert isinstance(result, Evaluation)
    assert {r.unit_id for r in result.primary.learners} == trained & direct
    assert result.primary.comparison_units == len((direct & renewing) - trained)
    assert result.opportunities is not None
    ids = set(result.opportunities["opportunity_id"].to_pylist())
    assert ids and ids <= {r["Id"] for r in deals if r["Type"] == "Renewal"}
    assert result.attribution is not None  # attribution, too, counts renewals only
    attributed = set(result.attribution.table["opportunity_id"].to_list())
    assert attributed <= {r["Id"] for r in deals if r["Type"] == "Renewal"}


# ------------------------------------------------------------------------------------------
# Micro-lessons: daily drills whose effect accumulates with every lesson completed
# ------------------------------------------------------------------------------------------

DRILLS = {"reps": 120, "months": 24, "seed": 11}


@pytest.fixture(scope="module")
def drills(run: Any) -> tuple[Path, dict[str, Any]]:
    out, _ = run("microlessons", **DRILLS)
    return out, truth_of(out)


@pytest.fixture(scope="module")
def drills_warehouse(drills: tuple[Path, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Any:
    from training_roi.ingest.folder import ingest_folder
    from training_roi.linking import link
    from training_roi.warehouse.connection import connect

    out, _ = drills
    con = connect(tmp_path_factory.mktemp("drills-wh") / "w.duckdb")
    info = ingest_folder(out, con)
    return con, info, link(con)


def _drill_statements(out: Path, parent: str) -> list[tuple[str, str, str, datetime]]:
    """The drills' statements, not voided, as (learner email, verb, drill id, timestamp).

    Read from the raw lines with the standard library: actors resolved by mbox or, for account
    actors, through learners.csv; a drill is an activity whose context parent is ``parent``.
    """
    email_of = {r["learner_id"]: r["email"].lower() for r in read_csv(out / "lms" / "learners.csv")[1]}
    statements = distinct(read_lines(out / "lms" / "statements.jsonl")[0])
    voided = {s["object"]["id"] for s in statements if s["verb"]["id"] == ADL + "voided"}
    rows = []
    for s in statements:
        parents = s.get("context", {}).get("contextActivities", {}).get("parent", [])
        if s["id"] in voided or [p["id"] for p in parents] != [parent]:
            continue
        actor = s["actor"]
        email = actor["mbox"].removeprefix("mailto:").lower() if "mbox" in actor else email_of[
            actor["account"]["name"]]
        rows.append((email, s["verb"]["id"].removeprefix(ADL), s["object"]["id"], datetime.fromisoformat(
            s["timestamp"])))
    return rows


@pytest.fixture(scope="module")
def drill_dates(drills: tuple[Path, dict[str, Any]]) -> dict[str, dict[str, date]]:
    """Per CRM user: each drill completed (not voided) and the UTC date of its first completion."""
    out, truth = drills
    user_by_email = {u["Email"].lower(): u["Id"] for u in read_csv(out / "crm" / "User.csv")[1]}
    dates: dict[str, dict[str, date]] = {}
    for email, verb, drill, when in _drill_statements(out, truth["program"]["course_activity_id"]):
        user = user_by_email.get(email)
        if verb != "completed" or user is None:
            continue  # partner staff do drills too, but own no deals
        mine = dates.setdefault(user, {})
        day = when.astimezone(UTC).date()
        mine[drill] = min(mine.get(drill, day), day)
    return dates


def _doses(out: Path) -> dict[str, tuple[int, date | None]]:
    return {r["user_id"]: (int(r["lessons"]), date.fromisoformat(r["first_lesson_date"]) if r["first_lesson_date"]
                           else None) for r in read_csv(out / "truth_doses.csv")[1]}


def test_microlessons_is_a_dose_scenario(drills: tuple[Path, dict[str, Any]]) -> None:
    out, truth = drills
    assert "microlessons" in SCENARIOS and truth["scenario"] == "microlessons"
    parent = truth["program"]["course_activity_id"]
    assert parent.endswith("/program/daily-drills")
    assert all(a.startswith(parent + "/lesson/") for a in truth["program"]["lesson_activity_ids"])
    assert truth["dose"]["estimand"] == "ame_per_lesson" and truth["effects"]["win_logit_per_lesson"] > 0
    assert {"dose", "dose.ame_per_lesson", "lessons", "program.course_activity_id"} <= set(truth["definitions"])
    lessons = [n for n, _ in _doses(out).values()]
    # Some reps do none; participants range from a handful to about sixty.
    assert len(lessons) == DRILLS["reps"] and 0 in lessons and min(n for n in lessons if n) <= 3
    assert 30 <= max(lessons) <= 60


def test_microlessons_files_ingest_cleanly(drills: tuple[Path, dict[str, Any]], drills_warehouse: Any) -> None:
    _, truth = drills
    con, info, linked = drills_warehouse
    assert info.ok
    written = {Path(f).stem: n for f, n in truth["files"].items() if not f.startswith("truth")}
    assert {s.source for s in info.sources} == set(written) - {"statements"} | {"xapi"}
    for s in info.sources:
        assert s.rows_read == s.rows_loaded + s.rows_quarantined + s.rows_duplicate, s.source
        assert s.rows_read == written["statements" if s.source == "xapi" else s.source], s.source
    xapi = next(s for s in info.sources if s.source == "xapi")
    assert xapi.rows_duplicate == truth["mess"]["duplicate_statements"] >= 2
    assert xapi.rows_quarantined == truth["mess"]["malformed_lines"]
    st = con.table("lms_statement")
    assert st.filter(st.is_voided).count().to_pyarrow().as_py() == truth["mess"]["voided_completions"] >= 1
    assert linked.ambiguous == 0


def test_doses_follow_from_the_statements(drills: tuple[Path, dict[str, Any]],
                                          drill_dates: dict[str, dict[str, date]]) -> None:
    """Distinct drills completed and the first one's date, re-derived from the raw lines, are the truth."""
    out, truth = drills
    doses = _doses(out)
    derived = {u: (len(d), min(d.values())) for u, d in drill_dates.items()}
    assert derived == {u: v for u, v in doses.items() if v[0] > 0}
    _, trained = read_csv(out / "truth_trained.csv")
    assert {r["user_id"]: date.fromisoformat(r["completion_date"]) for r in trained} == {
        u: first for u, (_, first) in derived.items()}
    assert truth["dose"]["learners"] == len(derived) == truth["trained"]["reps"]
    assert truth["dose"]["lessons_completed"] == sum(n for n, _ in derived.values())
    # The mess the count must see through is there: repeats, drills launched and left, voided completions.
    rows = _drill_statements(out, truth["program"]["course_activity_id"])
    done = Counter((email, drill) for email, verb, drill, _ in rows if verb == "completed")
    assert sum(n - 1 for n in done.values()) == truth["dose"]["repeated_completions"] > 0
    launched = {(email, drill) for email, verb, drill, _ in rows if verb == "launched"}
    assert len(launched - set(done)) == truth["dose"]["launched_not_completed"] > 0
    assert truth["mess"]["voided_completions"] >= 1
    partners = {email for email, *_ in rows} - {u["Email"].lower() for u in read_csv(out / "crm" / "User.csv")[1]}
    assert len(partners) == truth["dose"]["partner_learners"] > 0


def test_lesson_counts_from_the_warehouse_equal_the_truth(drills: tuple[Path, dict[str, Any]],
                                                          drills_warehouse: Any) -> None:
    from training_roi.measure import lesson_counts

    out, truth = drills
    con, _, _ = drills_warehouse
    expected = {u: v for u, v in _doses(out).items() if v[0] > 0}
    for activities in ([truth["program"]["course_activity_id"]], truth["program"]["lesson_activity_ids"]):
        counts = lesson_counts(con, activities)
        assert dict(zip(counts["unit"], zip(counts["lessons"], counts["first_lesson"], strict=True),
                        strict=True)) == expected


def test_microlessons_outcomes_follow_the_dose_model(drills: tuple[Path, dict[str, Any]],
                                                     drill_dates: dict[str, dict[str, date]]) -> None:
    """Each deal's treated outcome is at the lessons its owner had done on earlier dates, and only that."""
    out, truth = drills
    beta = truth["effects"]["win_logit_per_lesson"]
    df = _opportunities(out)  # `since` counts from the first drill (truth_trained.csv)
    owners = [r["OwnerId"] for r in read_csv(out / "crm" / "Opportunity.csv")[1]]
    created = {r["Id"]: utc_date(r["CreatedDate"]) for r in read_csv(out / "crm" / "Opportunity.csv")[1]}
    assert df["owner_id"].to_list() == owners
    lessons = [sum(d < created[o] for d in drill_dates.get(u, {}).values())
               for o, u in zip(df["opportunity_id"], df["owner_id"], strict=True)]
    assert df["lessons_before"].to_list() == lessons and max(lessons) >= 30
    exposed = df["lessons_before"] > 0
    assert (exposed == df["exposed"]).all() and (exposed == (df["since"].fill_null(0) >= 1)).all()
    p0, p1 = df["p0"].to_numpy(), df["p1"].to_numpy()
    assert np.allclose(np.log(p1 / (1 - p1)) - np.log(p0 / (1 - p0)), beta * df["lessons_before"].to_numpy(),
                       atol=1e-9)
    assert (df["obs_won"] == (df["won1"] & df["obs_closed"])).all()
    assert (df["won0"] == df["won1"]).filter(~exposed).all()
    assert (df["amount1"] == df["amount0"]).all() and (df["cycle1"] == df["cycle0"]).all()
    assert (df["obs_cycle"] == df["cycle0"]).all()


def test_dose_truth_equals_a_recomputation_from_potential_outcomes(drills: tuple[Path, dict[str, Any]]) -> None:
    from scipy.special import expit, logit

    out, truth = drills
    dose = truth["dose"]
    beta = truth["effects"]["win_logit_per_lesson"]
    total = {u: n for u, (n, _) in _doses(out).items()}
    df = _opportunities(out)
    w = df.filter(pl.col("since").is_between(1, dose["window_days"]) & ~pl.col("obs_deleted") & pl.col("obs_closed"))
    assert w.height == dose["opportunities"] > 500 and w["owner_id"].n_unique() == dose["reps"]
    # p1 rebuilt from the untreated probability and the lessons done before each deal.
    p1 = expit(logit(w["p0"].to_numpy()) + beta * w["lessons_before"].to_numpy())
    p0 = w["p0"].to_numpy()
    k = np.array([total[u] for u in w["owner_id"]])
    assert dose["ame_per_lesson"] == pytest.approx(np.mean(beta * p1 * (1 - p1)), rel=1e-9)
    assert dose["change_per_lesson_completed"] == pytest.approx((p1 - p0).sum() / k.sum(), rel=1e-9)
    assert dose["att_win_rate_expected"] == pytest.approx(np.mean(p1 - p0), rel=1e-9)
    assert dose["mean_lessons_before_deal"] == pytest.approx(w["lessons_before"].mean())
    assert dose["mean_lessons_completed_per_deal"] == pytest.approx(k.mean())
    # A finite difference of the potential outcomes agrees with the marginal effect (β is small).
    step = np.mean(expit(logit(p0) + beta * (w["lessons_before"].to_numpy() + 1)) - p1)
    assert dose["ame_per_lesson"] == pytest.approx(step, rel=0.02)
    # The window is the closed part of truth.windows.180, whose realised effect matches the expected one.
    t = truth["truth"]["windows"]["180"]
    assert t["closed"] == w.height
    assert t["att_win_rate"] == pytest.approx((w["won1"].cast(pl.Int64) - w["won0"].cast(pl.Int64)).mean())
    assert 0 < dose["change_per_lesson_completed"] < dose["ame_per_lesson"] < beta / 4


def test_microlessons_are_self_selected(drills: tuple[Path, dict[str, Any]]) -> None:
    """Stronger and more engaged reps do more lessons, and engaged reps improve without lessons."""
    out, truth = drills
    reps = pl.read_csv(out / "truth_reps.csv").filter(pl.col("eligible"))
    lessons = reps["lessons"].to_numpy()
    skill_r = np.corrcoef(lessons, reps["skill"].to_numpy())[0, 1]
    engagement_r = np.corrcoef(lessons, reps["engagement"].to_numpy())[0, 1]
    assert 0.1 < skill_r < engagement_r
    diag = truth["diagnostics"]
    assert diag["lessons_skill_correlation"] == pytest.approx(skill_r, abs=1e-5)
    assert diag["lessons_engagement_correlation"] == pytest.approx(engagement_r, abs=1e-5)
    # The untreated log-odds drift with engagement: compare each rep's deals a year apart.
    opps = pl.read_parquet(out / "truth_opportunities.parquet").join(
        reps.select(pl.col("user_id").alias("owner_id"), "engagement"), on="owner_id")
    rollout = date.fromisoformat(truth["program"]["rollout_start"])
    drift = opps.with_columns(
        years=(pl.col("created_date") - rollout).dt.total_days() / 365.25,
        eta=(pl.col("p0") / (1 - pl.col("p0"))).log())
    trend = truth["model"]["dose"]["trend_per_year"]
    hi = drift.filter(pl.col("engagement") > 1)
    lo = drift.filter(pl.col("engagement") < -1)
    slope = {g: np.polyfit(d["years"].to_numpy(), d["eta"].to_numpy(), 1)[0] for g, d in (("hi", hi), ("lo", lo))}
    assert slope["hi"] - slope["lo"] > trend


def test_microlessons_keep_the_seeds_pipeline(run: Any, drills: tuple[Path, dict[str, Any]]) -> None:
    out, _ = drills
    sales, _ = run("selection", **DRILLS)
    a = pl.read_parquet(out / "truth_opportunities.parquet")
    b = pl.read_parquet(sales / "truth_opportunities.parquet")
    for column in ("opportunity_id", "owner_id", "created_date", "amount0", "cycle0"):
        assert a[column].equals(b[column]), column
    assert (out / "crm" / "User.csv").read_bytes() == (sales / "crm" / "User.csv").read_bytes()


@pytest.mark.parametrize(("scenario", "extra"), [("microlessons", "truth_doses.csv"),
                                                   ("crm_golive", "truth_leads.parquet")])
def test_scenarios_with_their_own_truth_file_are_reproducible(tmp_path: Path, scenario: str, extra: str) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):
        simulate(folder, reps=15, months=8, seed=4, scenario=scenario)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert Path(extra) in files
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_dose_changes_anchor_learners_at_their_first_lesson(drills: tuple[Path, dict[str, Any]],
                                                           drills_warehouse: Any) -> None:
    """The dose estimator's inputs, built from the warehouse, carry the true doses and first-lesson months."""
    from tests.builders import unit_panel
    from training_roi.isolate.dose import dose_changes
    from training_roi.measure import lesson_counts

    out, truth = drills
    con, _, _ = drills_warehouse
    course = truth["program"]["course_activity_id"]
    panel = unit_panel(con, [course], kpi="win_rate")
    changes = dose_changes(panel, doses=lesson_counts(con, [course]))
    doses = _doses(out)
    learners = changes.filter(~pl.col("pseudo_anchor"))
    assert learners.height >= 0.9 * sum(n > 0 for n, _ in doses.values())
    for unit, lessons, anchor in learners.select("unit", "lessons", "anchor").iter_rows():
        n, first = doses[unit]
        assert first is not None and (lessons, anchor) == (n, first.replace(day=1)), unit
    assert set(changes.filter(pl.col("pseudo_anchor"))["unit"]) <= {u for u, (n, _) in doses.items() if n == 0}


# ------------------------------------------------------------------------------------------
# CRM go-live: teams move to a new CRM in waves; it works on leads, the sales KPIs are a placebo
# ------------------------------------------------------------------------------------------

GOLIVE = {"reps": 300, "months": 24, "seed": 11}
SF_FORMAT = "%Y-%m-%dT%H:%M:%S%.3fZ"


@pytest.fixture(scope="module")
def golive(run: Any) -> tuple[Path, dict[str, Any]]:
    out, _ = run("crm_golive", **GOLIVE)
    return out, truth_of(out)


def _epoch(column: str) -> pl.Expr:
    return pl.col(column).str.strptime(pl.Datetime("ms", "UTC"), SF_FORMAT).dt.epoch("s")


@pytest.fixture(scope="module")
def golive_leads(golive: tuple[Path, dict[str, Any]]) -> pl.DataFrame:
    """Leads as the files show them: team (User.ManagerId), first response (Task.WhoId), exposure by the stated dates.

    Joined to the per-lead potential outcomes of truth_leads.parquet, which are kept apart
    (``response_seconds0/1``, ``converted0/1``) from everything read off the CRM files.
    """
    out, truth = golive
    users = pl.read_csv(out / "crm" / "User.csv").select(OwnerId="Id", team="ManagerId")
    stated = pl.DataFrame([(t["team_id"], date.fromisoformat(t["go_live_date"])) for t in truth["crm"]["teams"]],
                          schema={"team": pl.String, "go_live": pl.Date}, orient="row")
    tasks = pl.read_csv(out / "crm" / "Task.csv").filter(~pl.col("IsDeleted") & pl.col("WhoId").str.starts_with("00Q"))
    first = tasks.group_by(Id="WhoId").agg(answered_s=_epoch("CreatedDate").min())
    leads = (
        pl.read_csv(out / "crm" / "Lead.csv")
        .join(users, on="OwnerId", how="left").join(stated, on="team", how="left").join(first, on="Id", how="left")
        .with_columns(created_s=_epoch("CreatedDate"), created=pl.col("CreatedDate").str.slice(0, 10).str.to_date())
        .with_columns(after=pl.col("created") >= pl.col("go_live"), seconds=pl.col("answered_s") - pl.col("created_s"))
    )
    po = pl.read_parquet(out / "truth_leads.parquet").select(
        Id="lead_id", t_exposed="exposed", s0="response_seconds0", s1="response_seconds1", c0="converted0",
        c1="converted1")
    return leads.join(po, on="Id", how="left", validate="1:1")


@pytest.fixture(scope="module")
def golive_warehouse(run: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A smaller go-live org (ingesting the large one takes long), ingested and linked."""
    from training_roi.ingest.folder import ingest_folder
    from training_roi.linking import link
    from training_roi.warehouse.connection import connect

    out, _ = run("crm_golive", **{**GOLIVE, "reps": 80})
    con = connect(tmp_path_factory.mktemp("golive-wh") / "w.duckdb")
    info = ingest_folder(out, con)
    return out, con, info, link(con)


def test_crm_golive_is_a_listed_scenario(golive: tuple[Path, dict[str, Any]]) -> None:
    from typer.testing import CliRunner

    from training_roi.cli import app

    _, truth = golive
    assert truth["scenario"] == "crm_golive" and truth["scenario_description"] == SCENARIOS["crm_golive"]
    listed = CliRunner().invoke(app, ["simulate", "unused", "--help-scenarios"])
    assert listed.exit_code == 0 and "crm_golive" in listed.output
    assert truth["program"]["name"] == "CRM rollout" and truth["program"]["course_activity_id"].endswith("/crm-basics")
    assert {"crm", "lead potential outcomes", "first response", "effects.first_response_factor"} <= set(
        truth["definitions"])


def test_crm_golive_files_ingest_cleanly(golive_warehouse: Any) -> None:
    out, con, info, linked = golive_warehouse
    truth = truth_of(out)
    assert info.ok and linked.ambiguous == 0
    written = {Path(f).stem: n for f, n in truth["files"].items() if not f.startswith("truth")}
    assert {s.source for s in info.sources} == set(written) - {"statements"} | {"xapi"}
    for s in info.sources:
        assert s.rows_read == s.rows_loaded + s.rows_quarantined + s.rows_duplicate, s.source
        assert s.rows_read == written["statements" if s.source == "xapi" else s.source], s.source
        if s.source in {"Lead", "Task"}:
            assert s.rows_quarantined == 0 and s.rows_duplicate == 0, s.source
    # Every first response is an activity on its lead in the warehouse.
    a = con.table("crm_activity")
    on_leads = a.filter(a.who_id.startswith("00Q")).count().to_pyarrow().as_py()
    assert on_leads == pl.read_parquet(out / "truth_leads.parquet")["responded"].sum() > 1000 * 80 / 300


def test_crm_golive_dates_are_as_stated(golive: tuple[Path, dict[str, Any]], golive_leads: pl.DataFrame) -> None:
    """Half the teams go live at month 12, the rest at month 16, and the files show the change on those dates."""
    out, truth = golive
    teams = truth["crm"]["teams"]
    start = date.fromisoformat(truth["start"])
    waves = [date(start.year + 1, start.month, 1), date(start.year + 1, start.month + 4, 1)]
    assert truth["crm"]["go_live_dates"] == [d.isoformat() for d in waves]
    per_wave = Counter(t["go_live_date"] for t in teams)
    assert set(per_wave) == {d.isoformat() for d in waves} and abs(per_wave[waves[0].isoformat()] -
                                                                   per_wave[waves[1].isoformat()]) <= 1
    # A team is a manager and the reps with that ManagerId in User.csv.
    members = Counter(pl.read_csv(out / "crm" / "Opportunity.csv")["OwnerId"].unique().to_list())
    managers = pl.read_csv(out / "crm" / "User.csv").filter(pl.col("Id").is_in(list(members)))["ManagerId"]
    assert {t["team_id"] for t in teams} == set(managers)
    reps = pl.read_csv(out / "truth_reps.csv").join(
        pl.read_csv(out / "crm" / "User.csv").select(user_id="Id", manager="ManagerId"), on="user_id")
    assert (reps["team_id"] == reps["manager"]).all()
    assert dict(Counter(reps["team_id"])) == {t["team_id"]: t["reps"] for t in teams}
    # Log response times step down by log(0.4) at each team's stated date, and not two months earlier.
    seen = golive_leads.filter(~pl.col("IsDeleted") & pl.col("seconds").is_not_null()).with_columns(
        log_hours=(pl.col("seconds") / 3600).log(), days=(pl.col("created") - pl.col("go_live")).dt.total_days())

    def step(at: int) -> float:
        before = seen.filter(pl.col("days").is_between(at - 60, at - 1))["log_hours"].mean()
        after = seen.filter(pl.col("days").is_between(at, at + 59))["log_hours"].mean()
        return float(after - before)

    assert step(0) == pytest.approx(np.log(truth["effects"]["first_response_factor"]), abs=0.12)
    assert abs(step(-60)) < 0.12 and abs(step(60)) < 0.12
    # Reps complete CRM Basics in the first two weeks of their team's go-live (local days, hence ±1 in UTC).
    trained = pl.read_csv(out / "truth_trained.csv", try_parse_dates=True).join(reps, on="user_id")
    lag = (trained["completion_date"] - trained["go_live_date"].str.to_date()).dt.total_days()
    assert trained.height > 0.8 * len(reps) and lag.is_between(-1, truth["model"]["crm"]["training_days"]).all()


def test_crm_golive_first_response_truth_equals_a_recomputation(golive: tuple[Path, dict[str, Any]],
                                                                 golive_leads: pl.DataFrame) -> None:
    _, truth = golive
    df = golive_leads
    assert (df["after"] == df["t_exposed"]).all()
    # The files show the new CRM's response for leads after their team's go-live, the old one's before.
    answered = df.filter(pl.col("seconds").is_not_null())
    shown = pl.when(pl.col("after")).then("s1").otherwise("s0")
    assert answered.select((pl.col("seconds") == shown).all()).item()
    assert answered.height > 0.99 * df.height  # only leads of the last days go unanswered
    factor = truth["effects"]["first_response_factor"]
    assert (df["s1"] == (factor * df["s0"]).round().clip(60)).all()
    # Exact: the realised responses from the files against the untreated potential outcome.
    scope = answered.filter(pl.col("after") & ~pl.col("IsDeleted"))
    by_team = {None: scope} | {t: g for (t,), g in scope.group_by("team")}
    rows = {None: truth["crm"]["overall"]} | {t["team_id"]: t for t in truth["crm"]["teams"]}
    assert set(by_team) == set(rows)
    for team, part in by_team.items():
        t = rows[team]
        assert t["leads_answered"] == part.height
        assert t["att_first_response_hours"] == pytest.approx((part["seconds"] - part["s0"]).mean() / 3600, rel=1e-9)
        assert t["mean_first_response_hours_observed"] == pytest.approx(part["seconds"].mean() / 3600, rel=1e-9)
        assert t["median_first_response_hours_observed"] == pytest.approx(part["seconds"].median() / 3600, rel=1e-9)
    overall = truth["crm"]["overall"]
    assert overall["median_first_response_hours_counterfactual"] == pytest.approx(30, rel=0.1)
    assert overall["median_first_response_hours_observed"] == pytest.approx(12, rel=0.1)
    # Realised before/after difference on the files alone, near the truth in an org this size.
    live = answered.filter(~pl.col("IsDeleted"))
    naive = (live.filter(pl.col("after"))["seconds"].mean() - live.filter(~pl.col("after"))["seconds"].mean()) / 3600
    assert truth["diagnostics"]["naive_before_after_first_response_hours"] == pytest.approx(naive, rel=1e-9)
    assert naive == pytest.approx(overall["att_first_response_hours"], abs=3.0)
    assert overall["att_first_response_hours"] < -20


def test_crm_golive_conversion_truth_equals_a_recomputation(golive: tuple[Path, dict[str, Any]],
                                                             golive_leads: pl.DataFrame) -> None:
    _, truth = golive
    df = golive_leads
    shown = pl.when(pl.col("after")).then("c1").otherwise("c0")
    assert df.select((pl.col("IsConverted") == shown).all()).item()
    assert not df.filter(pl.col("c0") & ~pl.col("c1")).height  # the new CRM loses no conversion
    # Leads converted only thanks to the new CRM are converted without an opportunity, and only those.
    gained = pl.col("after") & pl.col("c1") & ~pl.col("c0")
    assert df.select(((pl.col("IsConverted") & pl.col("ConvertedOpportunityId").is_null()) == gained).all()).item()
    scope = df.filter(pl.col("after") & ~pl.col("IsDeleted"))
    rows = {None: truth["crm"]["overall"]} | {t["team_id"]: t for t in truth["crm"]["teams"]}
    for team, part in ({None: scope} | {t: g for (t,), g in scope.group_by("team")}).items():
        t = rows[team]
        assert t["leads"] == part.height
        assert t["conversion_rate_observed"] == pytest.approx(part["IsConverted"].mean(), rel=1e-12)
        change = (part["IsConverted"].cast(pl.Int64) - part["c0"].cast(pl.Int64))
        assert t["att_conversion_rate"] == pytest.approx(change.mean(), rel=1e-12)
        assert t["incremental_conversions"] == change.sum()
    overall = truth["crm"]["overall"]
    assert overall["att_conversion_rate"] == pytest.approx(truth["effects"]["conversion_points"], abs=0.015)
    live = df.filter(~pl.col("IsDeleted"))
    naive = live.filter(pl.col("after"))["IsConverted"].mean() - live.filter(~pl.col("after"))["IsConverted"].mean()
    assert truth["diagnostics"]["naive_before_after_conversion_rate"] == pytest.approx(naive, rel=1e-12)
    assert naive == pytest.approx(overall["att_conversion_rate"], abs=0.02)


def test_crm_golive_sales_kpis_are_a_placebo(run: Any, golive: tuple[Path, dict[str, Any]]) -> None:
    """No effect on deals: the deals are the null scenario's to the byte, and the leads are the same leads."""
    out, truth = golive
    null, _ = run("null", **GOLIVE)
    assert truth["effects"] | {"first_response_factor": 0, "conversion_points": 0} == {
        "first_response_factor": 0, "conversion_points": 0, "win_logit": 0.0, "deal_size": 0.0, "cycle": 0.0,
        "ramp_days": 0}
    for window in truth["truth"]["windows"].values():
        assert window["opportunities"] > 0 and window["att_win_rate"] == 0.0 and window["incremental_revenue"] == 0
    for obj in ("User", "Account", "Contact", "Opportunity", "OpportunityHistory", "Case"):
        assert (out / "crm" / f"{obj}.csv").read_bytes() == (null / "crm" / f"{obj}.csv").read_bytes(), obj
    same = ["Id", "OwnerId", "CreatedDate", "LeadSource", "IsDeleted", "Email"]
    leads, null_leads = (pl.read_csv(folder / "crm" / "Lead.csv").select(same) for folder in (out, null))
    assert leads.equals(null_leads)


def test_crm_golive_costs(golive: tuple[Path, dict[str, Any]]) -> None:
    out, truth = golive
    costs = pl.read_csv(out / "costs.csv", try_parse_dates=True)
    assert costs.filter(pl.col("program").is_null()).height == 1
    crm = costs.filter(pl.col("program") == "CRM rollout")
    assert crm.height == costs.height - 1
    by_category = dict(crm.group_by("category").agg(pl.col("amount").sum()).iter_rows())
    assert set(by_category) == {"development", "licensing", "facilitation", "administration", "evaluation"}
    assert by_category == pytest.approx(truth["costs"]["by_category"])
    assert crm["amount"].sum() == pytest.approx(truth["costs"]["program_total"]) and crm["amount"].min() > 0
    # Licences: one invoice a month from the first go-live, the users named times the price per user and month.
    licences = crm.filter(pl.col("category") == "licensing").with_columns(
        users=pl.col("note").str.extract(r"(\d+) users").cast(pl.Int64))
    first, second = (date.fromisoformat(d) for d in truth["crm"]["go_live_dates"])
    assert licences["date"].to_list() == [date(first.year + (first.month + k - 1) // 12, (first.month + k - 1) % 12 + 1,
                                               1) for k in range(licences.height)]
    assert licences["date"].max() == date(2025, 12, 1)
    price = truth["model"]["crm"]["licence_per_user_month"]
    assert (licences["amount"] == licences["users"] * price).all()
    # Seats: the first wave's teams, then everyone's; never more than the teams' managers and reps.
    teams = truth["crm"]["teams"]
    wave1 = sum(t["reps"] + 1 for t in teams if t["go_live_date"] == first.isoformat())
    users = dict(zip(licences["date"], licences["users"], strict=True))
    assert 0.85 * wave1 <= users[first] <= wave1
    assert users[second] > 1.8 * users[first] and max(users.values()) <= sum(t["reps"] + 1 for t in teams)
    # Training sessions: one per wave, in the wave's first weeks.
    sessions = crm.filter(pl.col("category") == "facilitation")["date"].to_list()
    assert [(d - w).days for d, w in zip(sessions, (first, second), strict=True)] == [14, 14]


# ------------------------------------------------------------------------------------------
# Participant time: one set of sessions, reported several ways, counted once in the truth
# ------------------------------------------------------------------------------------------


def _seconds(duration: str) -> int:
    """An xAPI duration as the simulator writes it (``PT1H2M3S``) in seconds."""
    match = DURATION.match(duration)
    assert match, duration
    h, m, s = (int(g[:-1]) if g else 0 for g in match.groups())
    return 3600 * h + 60 * m + s


def _course_records(out: Path) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """Per learner (lower-case email): the course's time as each kind of record reports it, from the raw files."""
    truth = truth_of(out)
    course = truth["program"]["course_activity_id"]
    email_by_learner = {r["learner_id"]: r["email"].lower() for r in read_csv(out / "lms" / "learners.csv")[1]}
    statements = distinct(read_lines(out / "lms" / "statements.jsonl")[0])
    voided = {s["object"]["id"] for s in statements if s["verb"]["id"] == ADL + "voided"}
    by: dict[str, dict[str, Any]] = {}
    for s in statements:
        obj, verb = s["object"], s["verb"]["id"].removeprefix(ADL)
        if s["id"] in voided or obj.get("objectType") != "Activity" or "member" in s["actor"]:
            continue
        parent = s.get("context", {}).get("contextActivities", {}).get("parent", [{}])[0].get("id")
        if course not in (obj["id"], parent):
            continue
        actor = s["actor"]
        email = actor["mbox"].removeprefix("mailto:").lower() if "mbox" in actor else email_by_learner[
            actor["account"]["name"]]
        rec = by.setdefault(email, {"terminated": [], "experienced": 0, "quiz": 0, "answered": 0, "completed": []})
        duration = s.get("result", {}).get("duration")
        at = datetime.fromisoformat(s["timestamp"])
        if verb == "terminated" and obj["id"] == course:
            rec["terminated"].append((at, _seconds(duration)))
        elif verb == "completed" and obj["id"] == course:
            rec["completed"].append((at, None if duration is None else _seconds(duration)))
        elif verb == "experienced" and duration is not None:
            rec["experienced"] += _seconds(duration)
        elif verb in ("passed", "failed", "answered") and duration is not None:
            rec["quiz" if verb != "answered" else "answered"] += _seconds(duration)
    report = {r["learner_email"].lower(): int(r["minutes"]) for r in read_csv(out / "lms" / "completions.csv")[1]
              if r["course_id"] == course}
    return by, report


@pytest.mark.parametrize("scenario", ["selection", "crm_golive", "turnover"])
def test_participant_time_follows_from_the_records(run: Any, scenario: str) -> None:
    """The precedence rule, applied to the raw files, gives truth_time.csv's recorded time, learner by learner."""
    out, _ = run(scenario)
    truth = truth_of(out)
    by, report = _course_records(out)
    rows = read_csv(out / "truth_time.csv")[1]
    assert {r["email"] for r in rows} >= set(by) | set(report)
    rungs = Counter()
    for r in rows:
        rec = by.get(r["email"], {"terminated": [], "experienced": 0, "quiz": 0, "answered": 0, "completed": []})
        timed = [d for _, d in rec["completed"] if d is not None]
        if rec["terminated"]:
            rung, recorded = "sessions", sum(d for _, d in rec["terminated"])
        elif timed:
            rung, recorded = "completion_total", timed[0]
        elif r["email"] in report:
            rung, recorded = "completions_csv", 60 * report[r["email"]]
        else:
            rung, recorded = "none", 0
        rungs[rung] += 1
        assert (r["rung"], int(r["seconds_recorded"])) == (rung, recorded), r
        seconds = int(r["seconds"])
        if rung == "sessions":
            # One time, described four ways: the sessions, the lessons plus quiz attempts or plus their answers,
            # and the total.
            assert seconds == recorded == rec["experienced"] + rec["quiz"] == rec["experienced"] + rec["answered"]
            if rec["completed"]:
                done_at, total = rec["completed"][0]
                before = [d for at, d in rec["terminated"] if at <= done_at + timedelta(seconds=1)]
                assert total == sum(before) <= recorded
        elif rung == "completion_total":
            assert seconds == recorded and not rec["terminated"] and rec["quiz"] == rec["answered"] > 0
        elif r["tool"] == "completions_csv":
            assert r["email"] not in by and abs(recorded - seconds) <= 30
        else:
            assert recorded == 0 < seconds
        if r["email"] in report and rung in ("sessions", "completion_total"):
            # The report repeats the time up to the completion, to the minute: it adds nothing.
            assert abs(60 * report[r["email"]] - (timed[0] if timed else recorded)) <= 30
    assert set(rungs) == {"sessions", "completion_total", "completions_csv", "none"}
    pt = truth["participant_time"]
    assert pt["learners"] == len(rows) and pt["file"] == "truth_time.csv"
    assert pt["seconds"] == sum(int(r["seconds"]) for r in rows)
    assert pt["minutes_recorded"] == pytest.approx(sum(int(r["seconds_recorded"]) for r in rows) / 60, abs=1e-4)
    assert pt["minutes_recorded"] < pt["minutes"]
    assert {k: v["learners"] for k, v in pt["by_rung"].items()} == dict(rungs)
    titles = {u["Id"]: u["Title"] for u in read_csv(out / "crm" / "User.csv")[1]}
    by_title: dict[str, int] = Counter()
    for r in rows:
        if r["user_id"]:
            assert r["title"] == titles[r["user_id"]]
            by_title[r["title"]] += int(r["seconds"])
    assert {t: v["minutes"] for t, v in pt["by_title"].items()} == {
        t: pytest.approx(s / 60, abs=1e-4) for t, s in by_title.items()}
    assert {"participant_time", "participant_time.minutes_recorded", "truth_time.csv"} <= set(truth["definitions"])


def test_sessions_do_not_overlap_and_end_by_the_completion(run: Any) -> None:
    out, _ = run()
    by, _ = _course_records(out)
    for rec in by.values():
        ends = sorted(rec["terminated"])
        spans = [(at - timedelta(seconds=d), at) for at, d in ends]
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
        if rec["completed"] and ends:
            done_at = rec["completed"][0][0]
            assert any(abs((at - done_at).total_seconds()) < 1 for at, _ in ends)  # the completing session


# ------------------------------------------------------------------------------------------
# Revenue in a window by two definitions: booked (closing in it) and eventual (created in it)
# ------------------------------------------------------------------------------------------


def _revenue(out: Path, window: int | None) -> dict[str, Any]:
    """Both revenue definitions recomputed from truth_opportunities.parquet and truth_trained.csv, in cents."""
    truth = truth_of(out)
    end = date.fromisoformat(truth["end"])
    completion = {r["user_id"]: date.fromisoformat(r["completion_date"])
                  for r in read_csv(out / "truth_trained.csv")[1]}
    limit = window if window is not None else 10**6
    acc = Counter()
    for d in pl.read_parquet(out / "truth_opportunities.parquet").to_dicts():
        c = completion.get(d["owner_id"])
        if c is None or d["is_deleted"]:
            continue
        created = d["created_date"]
        exposed = d["exposed"]
        assert exposed == ((created - c).days >= 1)
        # What the CRM shows, created before or after the completion.
        shown = "1" if exposed else "0"
        close = created + timedelta(days=d[f"cycle{shown}"])
        if d["is_closed"] and d[f"won{shown}"] and 1 <= (close - c).days <= limit:
            acc["closing_observed"] += round(d[f"amount{shown}"] * 100)
        if not exposed:
            continue
        for k in ("0", "1"):
            cents = round(d[f"amount{k}"] * 100)
            close_k = created + timedelta(days=d[f"cycle{k}"])
            if d[f"won{k}"] and close_k < end and (close_k - c).days <= limit:
                acc[f"closing{k}"] += cents
            if (created - c).days <= limit:
                acc[f"created{k}"] += (cents if d[f"won{k}"] else 0) if close_k < end else round(d[f"p{k}"] * cents)
        if (created - c).days <= limit:
            if d["is_closed"] and d["won1"]:
                acc["created_observed"] += round(d["amount1"] * 100)
            acc["open"] += not d["is_closed"]
    return {
        "revenue_closing_in_window": (acc["closing1"] - acc["closing0"]) / 100,
        "revenue_closing_in_window_treated": acc["closing1"] / 100,
        "revenue_closing_in_window_counterfactual": acc["closing0"] / 100,
        "revenue_closing_in_window_observed": acc["closing_observed"] / 100,
        "revenue_created_in_window": (acc["created1"] - acc["created0"]) / 100,
        "revenue_created_in_window_treated": acc["created1"] / 100,
        "revenue_created_in_window_counterfactual": acc["created0"] / 100,
        "revenue_created_in_window_observed": acc["created_observed"] / 100,
        "opportunities_open_at_end": acc["open"],
    }


@pytest.mark.parametrize("scenario", ["selection", "long_cycles", "turnover", "deal_size", "microlessons"])
def test_revenue_truth_equals_a_recomputation(run: Any, scenario: str) -> None:
    out, _ = run(scenario, months=24)
    truth = truth_of(out)
    for name, window in (("90", 90), ("180", 180), ("365", 365), ("all", None)):
        t = truth["truth"]["windows"][name]
        assert {k: t[k] for k in _revenue(out, window)} == _revenue(out, window), (scenario, name)
        assert t["revenue_created_in_window_observed"] == t["won_revenue_observed"]
    primary = truth["truth"]["windows"]["180"]
    if scenario != "microlessons":
        assert primary["revenue_closing_in_window"] > 0 and primary["revenue_created_in_window"] > 0
    documented = set(truth["definitions"])
    for key in ("truth.windows.<W>.revenue_closing_in_window", "truth.windows.<W>.revenue_created_in_window",
                "truth.windows.<W>.incremental_revenue_booked", "export_date"):
        assert key in documented, key


def test_null_scenario_revenue_is_exactly_zero(run: Any) -> None:
    truth = truth_of(run("null")[0])
    for window in truth["truth"]["windows"].values():
        assert window["revenue_closing_in_window"] == 0 and window["revenue_created_in_window"] == 0
        assert window["revenue_closing_in_window_treated"] == window["revenue_closing_in_window_counterfactual"]


# ------------------------------------------------------------------------------------------
# Worlds that break money figures: turnover, long cycles, an effect on deal size only
# ------------------------------------------------------------------------------------------

TURNOVER = {"reps": 80, "months": 24, "seed": 11}


def test_new_scenarios_are_listed() -> None:
    from typer.testing import CliRunner

    from training_roi.cli import app

    listed = CliRunner().invoke(app, ["simulate", "unused", "--help-scenarios"])
    assert listed.exit_code == 0
    for name in ("turnover", "long_cycles", "deal_size"):
        assert name in SCENARIOS and f"{name}:" in listed.output


def test_turnover_reps_join_and_leave_in_both_groups(run: Any) -> None:
    out, _ = run("turnover", **TURNOVER)
    truth = truth_of(out)
    start = date.fromisoformat(truth["start"])
    reps = {r["user_id"]: r for r in read_csv(out / "truth_reps.csv")[1]}
    users = {u["Id"]: u for u in read_csv(out / "crm" / "User.csv")[1]}
    hire_dates = {r["learner_id"]: r["hire_date"] for r in read_csv(out / "lms" / "learners.csv")[1]}
    hired = {u for u, r in reps.items() if date.fromisoformat(r["hire_date"]) > start}
    left = {u for u, r in reps.items() if r["leave_date"]}
    share = len(hired | left) / len(reps)
    assert 0.22 <= share <= 0.42 and share == pytest.approx(truth["turnover"]["share_hired_or_left"], abs=1e-6)
    for u, r in reps.items():
        assert (users[u]["IsActive"] == "false") == (u in left)
        assert hire_dates[r["learner_id"]] == r["hire_date"]
        assert abs((utc_date(users[u]["CreatedDate"]) - date.fromisoformat(r["hire_date"])).days) <= 1
    trained = {u for u, r in reps.items() if r["trained"] == "true"}
    for group in (trained, set(reps) - trained):
        assert group & hired and group & left
    t = truth["turnover"]
    assert (t["trained_hired"], t["trained_left"]) == (len(trained & hired), len(trained & left))
    for u in trained:  # training only while employed
        done = date.fromisoformat(reps[u]["completion_date"])
        assert done >= date.fromisoformat(reps[u]["hire_date"]) + timedelta(days=21)
        if reps[u]["leave_date"]:
            assert done < date.fromisoformat(reps[u]["leave_date"]) - timedelta(days=13)
    lost = {r["opportunity_id"]: r for r in pl.read_parquet(out / "truth_opportunities.parquet").to_dicts()}
    departed = 0
    for o in read_csv(out / "crm" / "Opportunity.csv")[1]:
        owner, created = users[o["OwnerId"]], datetime.fromisoformat(o["CreatedDate"])
        assert created >= datetime.fromisoformat(owner["CreatedDate"])  # none before the hire
        leave = reps[o["OwnerId"]]["leave_date"]
        if not leave:
            continue
        last_day = date.fromisoformat(leave) - timedelta(days=1)
        assert utc_date(o["CreatedDate"]) < last_day  # none after leaving
        assert o["IsClosed"] == "true" and date.fromisoformat(o["CloseDate"]) <= last_day  # none left open
        d = lost[o["Id"]]
        if d["lost_at_departure1" if d["exposed"] else "lost_at_departure0"]:
            assert o["StageName"] == "Closed Lost" and date.fromisoformat(o["CloseDate"]) == last_day
            departed += o["IsDeleted"] == "false"
    assert departed == t["deals_closed_at_departure"] > 0
    leave_by_email = {users[u]["Email"].lower(): date.fromisoformat(r["leave_date"]) for u, r in reps.items()
                      if r["leave_date"]}
    answers = [r for r in read_csv(out / "surveys.csv")[1] if r["respondent_email"].lower() in leave_by_email]
    assert answers and all(date.fromisoformat(r["submitted_at"]) < leave_by_email[r["respondent_email"].lower()]
                           for r in answers)  # nobody answers after leaving
    assert {"turnover", "potential outcomes (turnover)"} <= set(truth["definitions"])


def test_turnover_new_reps_ramp_up(run: Any) -> None:
    out, _ = run("turnover", **TURNOVER)
    truth = truth_of(out)
    start = date.fromisoformat(truth["start"])
    hire = {r["user_id"]: date.fromisoformat(r["hire_date"]) for r in read_csv(out / "truth_reps.csv")[1]}
    opps = pl.read_parquet(out / "truth_opportunities.parquet").filter(
        pl.col("owner_id").is_in([u for u, d in hire.items() if d > start]))
    tenure = opps.with_columns(days=(pl.col("created_date") - pl.col("owner_id").replace_strict(
        hire, return_dtype=pl.Date)).dt.total_days())
    early = tenure.filter(pl.col("days") < 45).height
    settled = tenure.filter((pl.col("days") >= 135) & (pl.col("days") < 180)).height
    assert early < 0.6 * settled  # fewer deals in the first weeks
    assert tenure.filter(pl.col("days") < 45)["p0"].mean() < tenure.filter(pl.col("days") >= 180)["p0"].mean()


@pytest.mark.parametrize("scenario", ["long_cycles", "selection"])
def test_open_deals_look_open_at_the_export(run: Any, scenario: str) -> None:
    out, _ = run(scenario, months=24)
    truth = truth_of(out)
    export = date.fromisoformat(truth["export_date"])
    assert export == date.fromisoformat(truth["end"]) - timedelta(days=1)
    open_stages = {"Prospecting", "Qualification", "Needs Analysis", "Value Proposition", "Proposal/Price Quote",
                   "Negotiation/Review"}
    opps = read_csv(out / "crm" / "Opportunity.csv")[1]
    still = [o for o in opps if o["IsClosed"] == "false"]
    assert still
    for o in still:
        assert date.fromisoformat(o["CloseDate"]) > export and o["StageName"] in open_stages
        assert o["IsWon"] == "false" and int(o["Probability"]) < 100
    for o in opps:
        if o["IsClosed"] == "true":
            assert date.fromisoformat(o["CloseDate"]) <= export
    window = truth["truth"]["windows"]["180"]
    share_open = window["opportunities_open_at_end"] / window["opportunities"]
    if scenario == "long_cycles":
        assert truth["model"]["cycle_median_days"] == 210.0 and share_open > 0.25
        df = pl.read_parquet(out / "truth_opportunities.parquet")
        new = {r["Id"] for r in opps if r["Type"] == "New Business"}
        assert 180 <= df.filter(pl.col("opportunity_id").is_in(new))["cycle0"].median() <= 240
    else:
        assert share_open < 0.05


def test_deal_size_changes_amounts_only(run: Any) -> None:
    out, _ = run("deal_size")
    truth = truth_of(out)
    assert truth["effects"] == {"win_logit": 0.0, "deal_size": 0.12, "cycle": 0.0, "ramp_days": 0}
    df = pl.read_parquet(out / "truth_opportunities.parquet")
    assert (df["won1"] == df["won0"]).all() and (df["p1"] == df["p0"]).all() and (df["cycle1"] == df["cycle0"]).all()
    exposed = df.filter(pl.col("exposed"))
    assert exposed.height and (exposed["amount1"] > exposed["amount0"]).all()
    assert np.allclose(df["amount1"], np.round(df["amount0"] * 1.12, 2))
    for window in truth["truth"]["windows"].values():
        assert window["att_win_rate"] == 0.0 and window["att_cycle_days"] == 0.0
        assert window["incremental_won_deals"] == 0 and window["revenue_created_in_window"] > 0
    # The seed's deals: the same as in the randomised scenario, only bigger where trained.
    same = pl.read_parquet(run("randomised")[0] / "truth_opportunities.parquet")
    assert df["opportunity_id"].equals(same["opportunity_id"]) and df["amount0"].equals(same["amount0"])


def test_a_micro_lesson_program_is_answered_by_its_lessons_and_its_dose(drills: tuple[Path, dict[str, Any]],
                                                                          drills_warehouse: Any) -> None:
    """A study defined by the course's lessons: trained from the first (or n-th) lesson, valued per lesson × dose."""
    from training_roi.evaluation import Evaluation, evaluate
    from training_roi.measure import CohortRule, LessonSet, cohort
    from training_roi.study import Study

    out, truth = drills
    con, _, _ = drills_warehouse
    course = truth["program"]["course_activity_id"]
    doses = _doses(out)
    # Who took a lesson, and when they took their first: the truth's own file, not the product's reading of it.
    first = {u: day for u, (n, day) in doses.items() if n > 0}
    trained = cohort(con, CohortRule((course,), completion="lessons", lessons=LessonSet((course,))))
    assert dict(zip(trained.units, trained.anchors, strict=True)) == first
    fifth = cohort(con, CohortRule((course,), completion="lessons", lessons=LessonSet((course,)), anchor="nth",
                                   nth=5))
    assert set(fifth.units) == {u for u, (n, _) in doses.items() if n >= 5}
    assert fifth.outside == frozenset(u for u, (n, _) in doses.items() if 0 < n < 5)
    by_prefix = cohort(con, CohortRule((course,), completion="lessons",
                                       lessons=LessonSet((), prefix=course + "/lesson/")))
    assert set(by_prefix.units) == set(first)
    study = Study.model_validate({
        "name": "Drills", "program": {"name": truth["program"]["name"], "activities": [course],
                                      "completion": "lessons"},
        "costs": {"participant_time": {"hourly_rate": 60}},
        "isolation": {"method": "dose", "bootstrap_replicates": 300}, "attribution": {"enabled": False},
    })
    answer = evaluate(con, study)
    assert isinstance(answer, Evaluation)
    p = answer.primary
    assert p.design == "dose" and p.did is not None and p.revenue_definition == "seed"
    d = p.did.details
    assert p.did.estimate == pytest.approx(d["per_lesson"] * d["mean_dose_weighted"])
    assert p.did.ci_low <= p.did.estimate <= p.did.ci_high
    assert d["per_lesson_ci_low"] <= d["per_lesson"] <= d["per_lesson_ci_high"]
    assert any("Per lesson:" in line for line in answer.headline())
    # Program dates in a time zone other than UTC, and a course's own completion under a prefix, are no lessons.
    dated = cohort(con, CohortRule((course,), completion="lessons", lessons=LessonSet((), prefix=course),
                                   timezone="America/New_York", start=date(2024, 1, 1)))
    assert set(dated.units) <= set(first) and dated.units


def test_lessons_are_reps_lessons() -> None:
    from training_roi.study import Study, StudyError

    with pytest.raises(Exception, match="completion: lessons measures reps' lessons"):
        Study.model_validate({"name": "x", "program": {"activities": ["c"], "completion": "lessons"},
                              "population": {"unit": "account"}})
    with pytest.raises(Exception, match="nth_lesson applies with anchor: nth"):
        Study.model_validate({"name": "x", "program": {"activities": ["c"], "completion": "lessons",
                                                       "nth_lesson": 3}})
    assert StudyError
