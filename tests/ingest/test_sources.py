"""Delimited sources: the contract's Salesforce CSVs and LMS reports, and column mappings."""

from __future__ import annotations

import csv
import shutil
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tests.builders import write
from training_roi.errors import MappingError, SourceError
from training_roi.ingest.folder import ingest_folder
from training_roi.ingest.mapping import Mapping, load_mapping
from training_roi.ingest.sources import SOURCES, read_source
from training_roi.ingest.tabular import sf_id18
from training_roi.warehouse.connection import connect
from training_roi.warehouse.quality import quality_report

OPP_HEADER = (
    "Id,AccountId,OwnerId,Name,StageName,Amount,CloseDate,CreatedDate,IsClosed,IsWon,Type,"
    "LeadSource,Probability,IsDeleted,Region__c\n"
)


def _rows(con, name: str, order: str) -> list[dict]:
    return con.table(name).order_by(order).to_pyarrow().to_pylist()


def _quarantine(con) -> list[dict]:
    return con.table("quarantine").order_by(["source", "source_line", "field"]).to_pyarrow().to_pylist()


# --- the real Salesforce sample export, through its shipped mapping -------------------------


@pytest.fixture
def devorg(tmp_path: Path, realdata: Path) -> Path:
    folder = tmp_path / "devorg"
    shutil.copytree(realdata / "salesforce_devorg", folder)
    return folder


def test_sample_org_loads_through_its_mapping_with_right_dates_and_amounts(con, devorg: Path):
    info = ingest_folder(devorg, con, mapping=load_mapping("salesforce_devorg"))
    assert info.ok
    # Independent reading of the same file with the standard library.
    with (devorg / "Opportunity.csv").open(encoding="utf-8-sig", newline="") as fh:
        src = list(csv.DictReader(fh))
    opps = {r["opportunity_id"]: r for r in _rows(con, "crm_opportunity", "opportunity_id")}
    assert len(opps) == len(src) == 36
    expected_total = sum(Decimal(r["Amount"]) for r in src if r["Amount"])
    assert sum(r["amount"] for r in opps.values() if r["amount"] is not None) == expected_total
    won = opps["006bm00000LKJNPAA5"]
    assert won["amount"] == Decimal("220000.00")
    assert won["close_date"] == date(2024, 2, 3)
    assert won["is_won"] is True and won["is_closed"] is True
    assert won["created_at"] == datetime(2026, 2, 23, tzinfo=UTC)
    assert won["owner_id"] is None and won["is_deleted"] is False
    open_deal = opps["006bm00000LKdM8AAL"]
    assert open_deal["amount"] is None and open_deal["close_date"] == date(2026, 3, 31)
    # Datetimes in 12-hour MM/DD/YY form.
    hist = {r["history_id"]: r for r in _rows(con, "crm_opportunity_history", "history_id")}
    assert len(hist) == 48
    assert hist["008bm00000UoqOjAAJ"]["created_at"] == datetime(2026, 2, 23, 20, 55, tzinfo=UTC)
    assert hist["008bm00000UoqOjAAJ"]["close_date"] == date(2021, 1, 27)
    lead = {r["lead_id"]: r for r in _rows(con, "crm_lead", "lead_id")}["00Qbm00000Orxk5EAB"]
    assert lead["is_converted"] is True and lead["converted_date"] == date(2026, 2, 24)
    assert lead["converted_opportunity_id"] == "006bm00000LKgOnAAL"
    assert _quarantine(con) == []


def test_sample_org_without_its_mapping_is_quarantined_not_misread(con, devorg: Path):
    (devorg / "crm").mkdir()
    for name in ("Opportunity.csv", "Account.csv"):
        shutil.move(devorg / name, devorg / "crm" / name)
    info = ingest_folder(devorg, con)
    result = {s.source: s for s in info.sources}
    # MM/DD/YY is not the contract's date: no row is guessed into a wrong date.
    assert result["Opportunity"].status == "ok"
    assert (result["Opportunity"].rows_read, result["Opportunity"].rows_quarantined) == (36, 36)
    assert con.table("crm_opportunity").count().to_pyarrow().as_py() == 0
    q = [r for r in _quarantine(con) if r["source"] == "Opportunity"]
    assert {r["field"] for r in q} == {"CloseDate", "CreatedDate"}
    assert any("CloseDate '02/03/24' is not a date" in r["reason"] for r in q)
    assert result["Account"].rows_loaded == 18  # Account's fields hold no dates in this export


def test_sf_id18_matches_ids_salesforce_generated(devorg: Path):
    with (devorg / "Opportunity.csv").open(encoding="utf-8-sig", newline="") as fh:
        ids = [r["Id"] for r in csv.DictReader(fh)]
    assert ids and all(sf_id18(i[:15]) == i for i in ids)
    assert sf_id18("not-an-id") == "not-an-id"


# --- the contract's own shape ----------------------------------------------------------------


def _opportunity_file(folder: Path, body: str, *, bom: bool = True) -> Path:
    return write(folder / "crm" / "Opportunity.csv", OPP_HEADER + body, bom=bom)


GOOD = (
    '006000000000001AAA,001000000000001AAA,005000000000001AAA,"Acme, Inc. ""Big"" deal",Closed Won,'
    "12500.50,2025-03-04,2025-01-02T15:02:11.000Z,true,true,New Business,Web,100,false,EMEA\n"
    "006000000000002AAA,001000000000001AAA,005000000000001AAA,\"Multi\nline name\",Closed Lost,"
    "900,2025-04-01,2025-02-02T10:00:00.000Z,true,false,Renewal,,0,true,\n"
)


def test_contract_csv_with_bom_quotes_and_custom_columns(con, tmp_path: Path):
    _opportunity_file(tmp_path, GOOD)
    info = ingest_folder(tmp_path, con)
    assert info.ok
    rows = _rows(con, "crm_opportunity", "opportunity_id")
    assert [r["name"] for r in rows] == ['Acme, Inc. "Big" deal', "Multi\nline name"]
    assert rows[0]["amount"] == Decimal("12500.50")
    assert rows[0]["created_at"] == datetime(2025, 1, 2, 15, 2, 11, tzinfo=UTC)
    assert rows[1]["is_deleted"] is True and rows[1]["is_won"] is False
    assert rows[0]["source_line"] == 2


def test_bad_values_are_quarantined_with_row_and_field(con, tmp_path: Path):
    body = GOOD + (
        "006000000000003AAA,001000000000001AAA,005000000000001AAA,Bad date,Closed Won,10,"
        "2025-13-45,2025-02-02T10:00:00.000Z,true,true,,,100,false,\n"
        "006000000000004AAA,001000000000001AAA,005000000000001AAA,Bad amount,Closed Won,ten,"
        "2025-03-01,2025-02-02T10:00:00.000Z,maybe,true,,,100,false,\n"
        "006000000000005AAA,too,few,fields\n"
        ",001000000000001AAA,005000000000001AAA,No id,Closed Won,10,2025-03-01,,true,true,,,100,false,\n"
    )
    _opportunity_file(tmp_path, body)
    info = ingest_folder(tmp_path, con)
    result = next(s for s in info.sources if s.source == "Opportunity")
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (6, 2, 4)
    q = [(r["source_line"], r["field"]) for r in _quarantine(con)]
    # The multi-line record occupies one spreadsheet row, so the next records are rows 4…7.
    assert q == [(4, "CloseDate"), (5, "Amount"), (5, "IsClosed"), (6, ""), (7, "Id")]
    reasons = {r["field"]: r["reason"] for r in _quarantine(con)}
    assert reasons["Amount"] == "Amount 'ten' is not an amount such as 1234.50"
    assert reasons[""] == "has 4 fields where the header has 15"
    assert all(r["raw"] for r in _quarantine(con))


def test_duplicate_ids_identical_count_once_different_go_to_quarantine(con, tmp_path: Path):
    first = GOOD.splitlines(keepends=True)[0]
    changed = first.replace("12500.50", "99.00")
    _opportunity_file(tmp_path, first + first + changed)
    info = ingest_folder(tmp_path, con)
    r = next(s for s in info.sources if s.source == "Opportunity")
    assert (r.rows_read, r.rows_loaded, r.rows_duplicate, r.rows_quarantined) == (3, 1, 1, 1)
    assert _rows(con, "crm_opportunity", "opportunity_id")[0]["amount"] == Decimal("12500.50")
    assert "appears again with different values" in _quarantine(con)[0]["reason"]


def test_loading_twice_is_idempotent_and_newer_export_updates_by_id(con, tmp_path: Path):
    _opportunity_file(tmp_path, GOOD)
    write(tmp_path / "costs.csv", "program,category,amount,date,note\nX,development,1000,2025-01-01,a\n"
          "X,development,1000,2025-01-01,a\n")
    ingest_folder(tmp_path, con)
    first = {n: _rows(con, n, key) for n, key in (("crm_opportunity", "opportunity_id"),
                                                   ("cost_line", "cost_key"))}
    assert len(first["cost_line"]) == 2  # two equal invoices are two costs
    ingest_folder(tmp_path, con)
    assert {n: _rows(con, n, key) for n, key in (("crm_opportunity", "opportunity_id"),
                                                  ("cost_line", "cost_key"))} == first
    newer = GOOD.replace("12500.50", "13000.00") + (
        "006000000000009AAA,001000000000001AAA,005000000000001AAA,New,Prospecting,5,2025-06-01,"
        "2025-05-02T10:00:00.000Z,false,false,,,10,false,\n"
    )
    _opportunity_file(tmp_path, newer)
    write(tmp_path / "costs.csv", "program,category,amount,date,note\nX,development,1500,2025-01-01,a\n")
    info = ingest_folder(tmp_path, con)
    opp = next(s for s in info.sources if s.source == "Opportunity")
    assert (opp.new, opp.replaced) == (1, 2)
    rows = _rows(con, "crm_opportunity", "opportunity_id")
    assert [r["opportunity_id"][-4:] for r in rows] == ["1AAA", "2AAA", "9AAA"]
    assert rows[0]["amount"] == Decimal("13000.00")
    assert [r["amount"] for r in _rows(con, "cost_line", "cost_key")] == [Decimal("1500.00")]


def test_unreadable_file_stops_its_source_and_keeps_what_was_loaded(con, tmp_path: Path):
    _opportunity_file(tmp_path, GOOD)
    write(tmp_path / "crm" / "Account.csv", "Id,Name\n001000000000001AAA,Acme\n")
    ingest_folder(tmp_path, con)
    (tmp_path / "crm" / "Opportunity.csv").write_bytes(
        OPP_HEADER.encode() + "006000000000001AAA,x,y,Caf\xe9,Closed Won\n".encode("latin-1")
    )
    write(tmp_path / "crm" / "Account.csv", "Id,Name\n001000000000001AAA,Acme Corp\n")
    info = ingest_folder(tmp_path, con)
    status = {s.source: s.status for s in info.sources}
    assert not info.ok
    assert status["Opportunity"].startswith("refused: crm/Opportunity.csv")
    assert "utf-8" in status["Opportunity"].lower()
    assert status["Account"] == "ok"
    assert con.table("crm_opportunity").count().to_pyarrow().as_py() == 2  # untouched
    assert _rows(con, "crm_account", "account_id")[0]["name"] == "Acme Corp"
    refused = [r for r in _quarantine(con) if r["source_line"] == 0]
    assert refused and refused[0]["source_file"] == "crm/Opportunity.csv"


def test_missing_required_column_names_file_and_column(tmp_path: Path):
    path = write(tmp_path / "crm" / "Opportunity.csv", "Id,Amount,CloseDate\n006000000000001AAA,1,2025-01-01\n")
    with pytest.raises(SourceError, match=r"crm/Opportunity.csv, column 'StageName': required column is missing"):
        read_source(SOURCES["Opportunity"], [(path, "crm/Opportunity.csv")])


def test_absent_optional_column_loads_empty_with_a_note(tmp_path: Path):
    path = write(tmp_path / "crm" / "Opportunity.csv",
                 "Id,StageName,CloseDate\n006000000000001AAA,Closed Won,2025-01-01\n")
    batch = read_source(SOURCES["Opportunity"], [(path, "crm/Opportunity.csv")])
    assert batch.rows.column("amount").to_pylist() == [None]
    assert any("no column OwnerId" in n for n in batch.notes)


def test_lms_reports_validate_their_categories_and_levels(con, tmp_path: Path):
    write(tmp_path / "costs.csv", "program,category,amount,date,note\nX,catering,10,2025-01-01,\n"
          "X,Licensing,\"$1,200.00\",2025-01-02,annual\n")
    write(tmp_path / "surveys.csv", "respondent_email,role,program,level,question,score,confidence,submitted_at\n"
          "A@x.com,,X,reaction,q1,4,,2025-01-01\nb@x.com,boss,X,reaction,q1,4,,2025-01-01\n")
    write(tmp_path / "lms" / "completions.csv",
          "learner_id,learner_email,course_id,course_title,program,enrolled_at,completed_at,score,passed,minutes\n"
          ",,C1,Course,X,2025-01-01,,,,\nL1,,C1,Course,X,2025-01-01,2025-01-03T10:00:00+02:00,88,true,30\n")
    ingest_folder(tmp_path, con)
    q = {(r["source"], r["field"]): r["reason"] for r in _quarantine(con)}
    assert q[("costs", "category")].startswith("category 'catering' is not one of development, licensing")
    assert q[("surveys", "role")].startswith("role 'boss' is not one of learner, manager")
    assert "names no learner" in q[("completions", "learner_id")]
    cost = _rows(con, "cost_line", "cost_key")
    assert [(c["category"], c["amount"]) for c in cost] == [("licensing", Decimal("1200.00"))]
    survey = _rows(con, "survey_response", "response_key")
    assert [(s["email_norm"], s["role"]) for s in survey] == [("a@x.com", "learner")]
    comp = _rows(con, "lms_completion", "completion_key")
    assert comp[0]["completed_at"] == datetime(2025, 1, 3, 8, 0, tzinfo=UTC)


# --- mapping rules -----------------------------------------------------------------------------


def _mapping(tmp_path: Path, text: str) -> Mapping:
    return load_mapping(write(tmp_path / "m.yaml", text))


def test_mapping_cannot_leave_out_a_required_field(tmp_path: Path):
    m = _mapping(tmp_path, "name: m\nsources:\n  Opportunity:\n    fields:\n      StageName: null\n")
    path = write(tmp_path / "crm" / "Opportunity.csv", "Id,StageName,CloseDate\n1,Won,2025-01-01\n")
    with pytest.raises(MappingError, match=r"sources.Opportunity.fields.StageName is required"):
        read_source(SOURCES["Opportunity"], [(path, "crm/Opportunity.csv")], m)


def test_mapping_renames_columns_and_maps_values(tmp_path: Path):
    m = _mapping(tmp_path, """
name: a HubSpot deals export
formats: {date: "%d.%m.%Y"}
sources:
  Opportunity:
    file: deals.csv
    fields:
      Id: Deal ID
      StageName: Deal Stage
      CloseDate: Close Date
      Amount: Amount
      IsWon: {column: Deal Stage, values: {closedwon: true, "*": false}}
""")
    path = write(tmp_path / "deals.csv", "Deal ID,Deal Stage,Close Date,Amount\n17,closedwon,31.01.2025,5\n"
                                         "18,appointmentscheduled,01.02.2025,\n")
    batch = read_source(SOURCES["Opportunity"], [(path, "deals.csv")], m)
    rows = batch.rows.to_pylist()
    assert [(r["opportunity_id"], r["is_won"], r["close_date"]) for r in rows] == [
        ("17", True, date(2025, 1, 31)), ("18", False, date(2025, 2, 1))]


def test_mapping_errors_name_the_key(tmp_path: Path):
    m = _mapping(tmp_path, "name: m\nsources:\n  Opportunity:\n    fields:\n      Owner: x\n")
    path = write(tmp_path / "crm" / "Opportunity.csv", "Id,StageName,CloseDate\n1,W,2025-01-01\n")
    with pytest.raises(MappingError, match=r"sources.Opportunity.fields names Owner, which Opportunity does not have"):
        read_source(SOURCES["Opportunity"], [(path, "crm/Opportunity.csv")], m)
    with pytest.raises(MappingError, match=r"sources.Opportunity.encodin"):
        _mapping(tmp_path, "name: m\nsources:\n  Opportunity:\n    encodin: latin-1\n")
    with pytest.raises(MappingError, match="no such file"):
        load_mapping(tmp_path / "missing.yaml")


def test_chunked_reading_gives_the_same_warehouse(con, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Duplicates across chunks and a malformed row after the first chunk (the file is re-read)."""
    first = GOOD.splitlines(keepends=True)[0]
    body = GOOD + first + first.replace("12500.50", "1.00") + "006000000000005AAA,too,few\n"
    _opportunity_file(tmp_path, body)
    whole = tmp_path / "whole"
    whole_con = connect(whole / "w.duckdb")
    ingest_folder(tmp_path, whole_con)
    monkeypatch.setattr("training_roi.ingest.sources.CHUNK_ROWS", 1)
    info = ingest_folder(tmp_path, con)
    r = next(s for s in info.sources if s.source == "Opportunity")
    assert (r.rows_read, r.rows_loaded, r.rows_duplicate, r.rows_quarantined) == (5, 2, 1, 2)
    assert _rows(con, "crm_opportunity", "opportunity_id") == _rows(whole_con, "crm_opportunity", "opportunity_id")
    assert _quarantine(con) == _quarantine(whole_con)
    assert [q["source_line"] for q in _quarantine(con)] == [5, 6]


def test_value_maps_ignore_letter_case_and_spaces_map_blanks_and_report_what_they_missed(tmp_path: Path):
    # A deals export in lower case, with a stage the map forgot and a blank stage: 'Won'/'Lost' in the map
    # match 'won', ' WON ' and 'lost'; '' maps the blank cell; the forgotten 'engaging' goes to '*' and is
    # reported with its count, as are the values of a map without '*' that pass through unchanged.
    m = _mapping(tmp_path, """
name: one CSV of deals
sources:
  Opportunity:
    file: deals.csv
    fields:
      Id: deal
      StageName: {column: stage, values: {Won: Closed Won, Lost: Closed Lost, "": Prospecting}}
      CloseDate: closed
      IsWon: {column: stage, values: {Won: true, "*": false}}
      IsClosed: {column: stage, values: {Won: true, "lost": true, "": false, "*": false}}
""")
    path = write(tmp_path / "deals.csv", "deal,stage,closed\n1,won,2025-01-31\n2, WON ,2025-02-01\n3,lost,2025-02-02\n"
                                         "4,engaging,2025-03-01\n5,,2025-03-01\n6,Engaging,2025-03-01\n")
    batch = read_source(SOURCES["Opportunity"], [(path, "deals.csv")], m)
    rows = {r["opportunity_id"]: r for r in batch.rows.to_pylist()}
    assert [(rows[i]["stage_name"], rows[i]["is_won"], rows[i]["is_closed"]) for i in "123456"] == [
        ("Closed Won", True, True), ("Closed Won", True, True), ("Closed Lost", False, True),
        ("engaging", False, False), ("Prospecting", False, False), ("Engaging", False, False)]
    notes = [n for n in batch.notes if "not in the value map" in n]
    won = next(n for n in notes if ".is_won" in n)
    assert won.startswith("deals.csv: Opportunity.is_won (stage): 3 values not in the value map became 'false'")
    assert all(f"{v!r} ×1" in won for v in ("lost", "engaging", "Engaging"))
    stage = next(n for n in notes if ".stage_name" in n)
    assert "2 values not in the value map were kept as they are" in stage
    closed = next(n for n in notes if ".is_closed" in n)
    assert "2 values not in the value map became 'false'" in closed and "'lost'" not in closed


def test_a_value_map_with_two_spellings_of_one_key_mapping_apart_is_refused(tmp_path: Path):
    with pytest.raises(MappingError, match="keys 'Won' and 'won ' are the same value"):
        _mapping(tmp_path, "name: m\nsources:\n  Opportunity:\n    fields:\n"
                           "      IsWon: {column: s, values: {Won: true, 'won ': false}}\n")


def test_deals_closed_before_their_creation_or_with_a_negative_amount_are_quality_warnings(con, tmp_path: Path):
    # Three deals: one ordinary, one closed on 2024-11-30 but created on 2025-01-02, one won at −$250.
    _opportunity_file(tmp_path, GOOD.splitlines(keepends=True)[0]
                      + "006000000000003AAA,001000000000001AAA,005000000000001AAA,Early,Closed Lost,"
                        "100,2024-11-30,2025-01-02T15:02:11.000Z,true,false,New Business,Web,0,false,\n"
                      + "006000000000004AAA,001000000000001AAA,005000000000001AAA,Credit,Closed Won,"
                        "-250,2025-03-04,2025-01-02T15:02:11.000Z,true,true,New Business,Web,100,false,\n")
    ingest_folder(tmp_path, con)
    text = "\n".join(quality_report(con).warnings)
    assert "1 of 3 opportunities (33.3%) closed before they were created" in text
    assert "1 of 3 opportunities (33.3%) have a negative amount" in text
