"""Inputs damaged on their way: never a quiet success, never a column loaded empty by accident.

A file that cannot be read at all is never a quiet success (the ingest says so and exits 1); a
header glued from two files (a byte-order mark in the middle) still names its columns.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.builders import mbox, statement, write
from training_roi.cli import app
from training_roi.errors import SourceError
from training_roi.ingest.sources import SOURCES, read_source
from training_roi.warehouse.connection import connect

runner = CliRunner()


def _lines(first: int, n: int) -> str:
    return "".join(json.dumps(statement(first + i, mbox(f"rep{i}@example.com"))) + "\n" for i in range(n))


@pytest.mark.parametrize("encoding", ["utf-16", "latin-1"])
def test_an_xapi_file_not_in_utf8_is_refused_and_the_others_load(tmp_path: Path, encoding: str):
    (tmp_path / "lms").mkdir()
    (tmp_path / "lms" / "good.jsonl").write_text(_lines(1, 3), encoding="utf-8")
    bad = _lines(10, 4).replace("rep0", "repé0")  # one accented letter: latin-1 differs from UTF-8
    (tmp_path / "lms" / "bad.jsonl").write_bytes(bad.encode(encoding))
    db = tmp_path / "w.duckdb"
    result = runner.invoke(app, ["ingest", str(tmp_path), "--db", str(db), "--json"])
    assert result.exit_code == 1  # data was not read: never exit 0
    source = json.loads(result.stdout)["ingest"]["sources"][0]
    assert source["status"].startswith("partly refused: lms/bad.jsonl could not be read")
    assert source["rows_loaded"] == 3
    con = connect(db, create=False)
    statements = con.table("lms_statement").count().to_pyarrow().as_py()
    reasons = con.table("quarantine").select("source_file", "source_line", "reason").to_pyarrow().to_pylist()
    con.disconnect()
    assert statements == 3
    assert [(r["source_file"], r["source_line"]) for r in reasons] == [("lms/bad.jsonl", 0)]
    assert "not UTF-8" in reasons[0]["reason"]


def test_a_byte_order_mark_or_spaces_inside_a_header_name_the_same_column(tmp_path: Path):
    path = write(tmp_path / "costs.csv", "category,\ufeffprogram , amount,date\n"
                 "development,Sales Excellence,1200.50,2025-01-15\nlicensing,Sales Excellence,300,2025-02-01\n")
    batch = read_source(SOURCES["costs"], [(path, "costs.csv")])
    assert batch.rows.column("program").to_pylist() == ["Sales Excellence"] * 2
    assert [str(a) for a in batch.rows.column("amount").to_pylist()] == ["1200.50", "300.00"]
    assert not batch.quarantine and batch.notes == ["costs.csv: no column note; costs.note loaded empty"]


def test_numbers_that_are_not_finite_or_out_of_range_are_quarantined_naming_the_field(tmp_path: Path):
    path = write(tmp_path / "completions.csv", "learner_email,course_id,score,minutes\n"
                 "a@x.com,C1,85,30\nb@x.com,C1,NaN,30\nc@x.com,C1,inf,30\nd@x.com,C1,1e26,30\n"
                 "e@x.com,C1,-5000,30\nf@x.com,C1,90,-10\ng@x.com,C1,,\n")
    batch = read_source(SOURCES["completions"], [(path, "completions.csv")])
    assert batch.rows.column("email").to_pylist() == ["a@x.com", "g@x.com"]
    found = sorted((q.source_line, q.field, q.reason) for q in batch.quarantine)
    assert found == [
        (3, "score", "score 'NaN' is not a finite number"),
        (4, "score", "score 'inf' is not a finite number"),
        (5, "score", "score '1e26' is not between 0 and 100"),
        (6, "score", "score '-5000' is not between 0 and 100"),
        (7, "minutes", "minutes '-10' is not between 0 and 60000"),
    ]


def test_a_date_written_with_a_time_and_an_offset_keeps_the_day_written(tmp_path: Path):
    path = write(tmp_path / "Opportunity.csv", "Id,StageName,CloseDate,IsClosed,IsWon\n"
                 "O1,Won,2025-03-31T23:30:00+14:00,true,true\nO2,Won,2025-03-31 20:00:00-10:00,true,true\n"
                 "O3,Won,2025-03-31T00:15:00Z,true,true\nO4,Won,2025-03-31,true,true\n")
    batch = read_source(SOURCES["Opportunity"], [(path, "crm/Opportunity.csv")])
    assert {d.isoformat() for d in batch.rows.column("close_date").to_pylist()} == {"2025-03-31"}


def _repeat(text: str, key: str, first: str) -> str:
    """``text`` (one statement's JSON) with ``key`` written twice in its object: ``first``, then its own value."""
    return text.replace(f'"{key}": ', f'"{key}": {first}, "{key}": ', 1)


@pytest.mark.parametrize("form", ["jsonl", "array"])
def test_a_key_repeated_in_a_statement_is_quarantined_not_resolved_silently(tmp_path: Path, form: str):
    good = json.dumps(statement(1, mbox("a@example.com"), result={"success": True}))
    when = _repeat(json.dumps(statement(2, mbox("b@example.com"))), "timestamp", '"2024-01-01T00:00:00Z"')
    outcome = _repeat(json.dumps(statement(3, mbox("c@example.com"), result={"success": True})), "success", "false")
    (tmp_path / "lms").mkdir()
    if form == "jsonl":
        (tmp_path / "lms" / "s.jsonl").write_text(f"{good}\n{when}\n{outcome}\n", encoding="utf-8")
    else:
        (tmp_path / "lms" / "s.json").write_text(f"[{good},\n{when},\n{outcome}]", encoding="utf-8")
    db = tmp_path / "w.duckdb"
    result = runner.invoke(app, ["ingest", str(tmp_path), "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    con = connect(db, create=False)
    loaded = con.table("lms_statement").actor_email.to_pyarrow().to_pylist()
    held = sorted((q["source_line"], q["field"]) for q in con.table("quarantine").to_pyarrow().to_pylist())
    con.disconnect()
    assert loaded == ["a@example.com"]
    assert held == [(2, "timestamp"), (3, "result.success")]


@pytest.mark.parametrize("rows", [2, 3_000])  # found by the header's reader, or by Arrow's further on
def test_a_line_in_another_encoding_is_named_by_its_number(tmp_path: Path, rows: int):
    path = tmp_path / "User.csv"
    body = "".join(f"U{i:08d},Ana {i},ana{i}@x.com\n" for i in range(rows)).encode()
    path.write_bytes(b"Id,Name,Email\n" + body + "U99,Jos\xe9,jose@x.com\n".encode("latin-1"))
    with pytest.raises(SourceError, match=rf"is not utf-8 text at line {rows + 2:,} \(byte 8 of the line\)"):
        read_source(SOURCES["User"], [(path, "crm/User.csv")])


def test_a_header_with_nul_characters_is_refused_saying_why(tmp_path: Path):
    # A UTF-16 export cut short without its byte-order mark: found by the mutation campaign (a traceback).
    path = tmp_path / "User.csv"
    path.write_bytes("Id,Name,Email\nU1,Ana,ana@x.com\n".encode("utf-16-le"))
    with pytest.raises(SourceError, match="has NUL characters in its header, as a UTF-16 file"):
        read_source(SOURCES["User"], [(path, "crm/User.csv")])


def test_an_oversized_field_is_refused_saying_so(tmp_path: Path):
    path = tmp_path / "User.csv"
    path.write_bytes(b"Id,Name,Email\nU1,Ana,ana@x.com\nU2,\"" + b"x" * (33 << 20) + b"\",big@x.com\n")
    with pytest.raises(SourceError, match="has a field larger than 16 MiB"):
        read_source(SOURCES["User"], [(path, "crm/User.csv")])


def test_an_ingest_that_never_finished_is_reported_until_its_source_is_loaded_again(tmp_path: Path, monkeypatch):
    from tests.builders import write_small_org
    from training_roi.ingest import folder
    from training_roi.warehouse.quality import quality_report

    data = write_small_org(tmp_path)
    db = tmp_path / "w.duckdb"
    real = folder._ingest_source
    calls: list[str] = []

    def killed_at_the_second_source(con, name, *args, **kwargs):
        calls.append(name)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process stops here, as a kill would
        return real(con, name, *args, **kwargs)

    monkeypatch.setattr(folder, "_ingest_source", killed_at_the_second_source)
    con = connect(db)
    with pytest.raises(KeyboardInterrupt):
        folder.ingest_folder(data, con)
    unfinished = [w for w in quality_report(con).warnings if "did not finish" in w]
    started = {r["source"] for r in con.table("ingest_run").to_pyarrow().to_pylist() if r["status"] == folder.STARTED}
    assert set(calls) <= started  # every source of the run: its accounts are written when it ends
    assert sorted(unfinished) == sorted(f"source {name}: an ingest began loading it and did not finish (stopped or "
                                        "killed); it may be half loaded: run the ingest of its folder again"
                                        for name in started)
    monkeypatch.setattr(folder, "_ingest_source", real)
    folder.ingest_folder(data, con)
    assert not [w for w in quality_report(con).warnings if "did not finish" in w]
    assert not [t for t in con.list_tables() if t.startswith(("ibis_", "_stage_"))]
    con.disconnect()



def test_a_header_reordered_against_its_rows_is_caught_by_the_values_that_no_longer_fit(tmp_path: Path):
    # The header names its columns; the rows kept the old order: emails under name, ids under email.
    path = write(tmp_path / "learners.csv", "learner_id,name,email,hire_date\n"
                 "L1,ana@x.com,Ana Lopez,2024-01-02\nL2,ben@x.com,Ben Okafor,2024-02-03\n")
    batch = read_source(SOURCES["learners"], [(path, "lms/learners.csv")])
    assert batch.rows.num_rows == 0
    assert sorted((q.source_line, q.field) for q in batch.quarantine) == [(2, "email"), (3, "email")]
    assert batch.quarantine[0].reason == "email 'Ana Lopez' is not an email address"


@pytest.mark.parametrize("blocks", ["one block", "blocks read here", "blocks read by workers"])
def test_an_id_delivered_again_with_other_content_is_a_conflict_in_quarantine(tmp_path: Path, monkeypatch,
                                                                                blocks: str):
    from training_roi.ingest.xapi import framing, parallel, read_xapi

    if blocks != "one block":  # small blocks, so that the repeats fall in blocks after the first
        monkeypatch.setattr(framing, "BLOCK_BYTES", 600)
    if blocks == "blocks read by workers":
        monkeypatch.setattr(parallel, "PARALLEL_MIN_BYTES", 0)
    first = statement(1, mbox("a@example.com"), result={"success": True})
    other = statement(2, mbox("b@example.com"))
    lines = [first, other, *(statement(10 + i, mbox(f"c{i}@example.com")) for i in range(6)),
             first,  # the same statement again: a duplicate
             {**first, "result": {"success": False}}]  # its id with another outcome: a conflict
    path = tmp_path / "s.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in lines), encoding="utf-8")
    batch = read_xapi([(path, "lms/s.jsonl")])
    assert (batch.rows_read, batch.rows_loaded, batch.rows_duplicate) == (10, 8, 1)
    assert [(q.source_line, q.field) for q in batch.quarantine] == [(10, "id")]
    assert "appears again with different content" in batch.quarantine[0].reason
    assert '"success": false' in batch.quarantine[0].raw
    success = dict(zip(batch.rows.column("statement_id").to_pylist(), batch.rows.column("success").to_pylist(),
                       strict=True))
    assert success[first["id"]] is True  # the first delivery stands
