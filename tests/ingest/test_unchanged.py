"""An unchanged export is not read again: the same warehouse, the same accounts, a fraction of the time.

Each case compares the warehouse a skipping ingest leaves with one that read everything
(``reread=True``, or a fresh warehouse of the same files), table by table and row by row: a
source is skipped only when reading it would have changed nothing.
"""

from __future__ import annotations

import os
import shutil
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from training_roi.ingest.folder import ingest_folder
from training_roi.ingest.loads import fingerprint
from training_roi.ingest.mapping import Mapping
from training_roi.simulate import simulate
from training_roi.warehouse.connection import connect
from training_roi.warehouse.load import Staging, upsert
from training_roi.warehouse.schema import TABLES

CANONICAL = [name for name, t in TABLES.items() if t.layer != "audit"]


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small simulated org's files."""
    folder = tmp_path_factory.mktemp("export") / "data"
    simulate(folder, reps=40, months=12, seed=5)
    return folder


def _copy(export: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    shutil.copytree(export, folder)
    return folder


def _tables(con) -> dict[str, list[dict]]:
    """Every canonical table's rows, in a fixed order."""
    out = {}
    for name in CANONICAL:
        t = con.table(name)
        out[name] = t.order_by(list(t.columns)).to_pyarrow().to_pylist()
    return out


def _skipped(info) -> set[str]:
    return {s.source for s in info.sources if s.unchanged}


def test_a_second_ingest_of_the_same_files_reads_nothing_and_changes_nothing(export: Path, tmp_path: Path):
    con = connect(tmp_path / "wh.duckdb")
    first = ingest_folder(export, con)
    before = _tables(con)
    again = ingest_folder(export, con)
    assert _skipped(again) == {s.source for s in first.sources}
    assert _tables(con) == before
    # The accounts are the first load's.
    for a, b in zip(first.sources, again.sources, strict=True):
        assert (a.rows_read, a.rows_loaded, a.rows_quarantined, a.rows_duplicate, a.status, a.notes) == (
            b.rows_read, b.rows_loaded, b.rows_quarantined, b.rows_duplicate, b.status, b.notes)
        assert b.new == b.replaced == 0
    assert again.voided_statements == first.voided_statements and again.ok
    # reread reads every source, and still changes nothing.
    forced = ingest_folder(export, con, reread=True)
    assert not _skipped(forced) and _tables(con) == before


def test_a_changed_file_is_read_again_and_the_warehouse_is_a_fresh_ingest(export: Path, tmp_path: Path):
    folder = _copy(export, tmp_path)
    con = connect(tmp_path / "wh.duckdb")
    ingest_folder(folder, con)
    opportunities = folder / "crm" / "Opportunity.csv"
    lines = opportunities.read_text(encoding="utf-8").splitlines(keepends=True)
    # One deal's amount changed in place: same size is not enough to pass for unchanged.
    header = lines[0].rstrip("\n").split(",")
    cells = lines[1].rstrip("\n").split(",")
    amount = header.index("Amount")
    cells[amount] = str(int(float(cells[amount] or 0)) + 1)
    lines[1] = ",".join(cells) + "\n"
    opportunities.write_text("".join(lines), encoding="utf-8")
    again = ingest_folder(folder, con)
    assert "Opportunity" not in _skipped(again) and "User" in _skipped(again)
    fresh = connect(tmp_path / "fresh.duckdb")
    ingest_folder(folder, fresh)
    assert _tables(con) == _tables(fresh)


def test_a_touched_or_copied_file_is_read_again(export: Path, tmp_path: Path):
    folder = _copy(export, tmp_path)
    con = connect(tmp_path / "wh.duckdb")
    ingest_folder(folder, con)
    users = folder / "crm" / "User.csv"
    st = users.stat()
    os.utime(users, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    costs = folder / "costs.csv"
    copy = costs.read_bytes()
    costs.unlink()
    costs.write_bytes(copy)  # the same contents in another file
    again = ingest_folder(folder, con)
    assert {"User", "costs"}.isdisjoint(_skipped(again)) and "Opportunity" in _skipped(again)


def test_a_table_written_since_is_read_again(export: Path, tmp_path: Path):
    con = connect(tmp_path / "wh.duckdb")
    ingest_folder(export, con)
    fresh = _tables(con)
    # Writes by something else than this folder's ingest (a sync, say): one deal's amount, one user's title.
    deal = con.table("crm_opportunity").order_by("opportunity_id").limit(1).to_pyarrow()
    upsert(con, "crm_opportunity", deal.set_column(deal.schema.get_field_index("amount"), "amount",
                                                   pa.array([Decimal("1.00")], deal.schema.field("amount").type)))
    user = con.table("crm_user").order_by("user_id").limit(1).to_pyarrow()
    staging = Staging(con, "crm_user")
    staging.add(user.set_column(user.schema.get_field_index("title"), "title", pa.array(["Changed"])))
    staging.merge()
    assert _tables(con) != fresh
    again = ingest_folder(export, con)
    assert {"Opportunity", "User"}.isdisjoint(_skipped(again)) and "Account" in _skipped(again)
    assert _tables(con) == fresh  # the files' records again


def test_a_stopped_ingest_is_read_again_in_full(export: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import training_roi.ingest.folder as folder_module

    con = connect(tmp_path / "wh.duckdb")
    real = folder_module.stream_source

    def stopped(spec, files, staging, *args, **kwargs):
        if spec.table == "crm_opportunity":
            real(spec, files, staging, *args, **kwargs)  # read in full, then Ctrl-C before it is merged
            raise KeyboardInterrupt
        return real(spec, files, staging, *args, **kwargs)

    monkeypatch.setattr(folder_module, "stream_source", stopped)
    with pytest.raises(KeyboardInterrupt):
        ingest_folder(export, con)
    monkeypatch.setattr(folder_module, "stream_source", real)
    # The sources loaded before the stop are not recorded as loaded until a run ends: all are read.
    again = ingest_folder(export, con)
    assert not _skipped(again)
    fresh = connect(tmp_path / "fresh.duckdb")
    ingest_folder(export, fresh)
    assert _tables(con) == _tables(fresh)
    assert _skipped(ingest_folder(export, con)) == {s.source for s in again.sources}


def _with_event(export: Path, tmp_path: Path) -> tuple[Path, str]:
    """The export with an Event.csv whose first row has the id of the first task (the two write one table)."""
    folder = _copy(export, tmp_path)
    first = (folder / "crm" / "Task.csv").read_text(encoding="utf-8").splitlines()[1].split(",")[0]
    header = "Id,IsDeleted,OwnerId,WhoId,WhatId,AccountId,Subject,EventSubtype,ActivityDate,Status,IsClosed,CreatedDate"
    (folder / "crm" / "Event.csv").write_text("\n".join([
        header, f"{first},false,,,,,An event with a task's id,Meeting,2024-02-04,Completed,true,2024-02-02T03:53:04Z",
        "00UEVENT0000000001,false,,,,,Another event,Meeting,2024-02-04,Completed,true,2024-02-02T03:53:04Z"]) + "\n",
        encoding="utf-8")
    return folder, first


@pytest.mark.parametrize("change", ["event file gone", "event row gone"])
def test_sources_writing_one_table_are_read_together(export: Path, tmp_path: Path, change: str):
    folder, clash = _with_event(export, tmp_path)
    con, reference = connect(tmp_path / "wh.duckdb"), connect(tmp_path / "reference.duckdb")
    for _ in range(2):
        ingest_folder(folder, reference, reread=True)
        ingest_folder(folder, con)
    assert _skipped(ingest_folder(folder, con)) >= {"Task", "Event"}  # unchanged: neither is read
    events = folder / "crm" / "Event.csv"
    if change == "event file gone":
        events.unlink()
    else:
        lines = events.read_text(encoding="utf-8").splitlines()
        events.write_text("\n".join([lines[0], lines[2]]) + "\n", encoding="utf-8")
    again = ingest_folder(folder, con)
    ingest_folder(folder, reference, reread=True)
    assert "Task" not in _skipped(again) and "Opportunity" in _skipped(again)
    t = con.table("crm_activity")
    assert t.filter(t.activity_id == clash).kind.to_pyarrow().to_pylist() == ["task"]  # the task's record again
    assert _tables(con) == _tables(reference)


def test_a_table_dropped_and_made_again_is_loaded_again(export: Path, tmp_path: Path):
    con = connect(tmp_path / "wh.duckdb")
    ingest_folder(export, con)
    fresh = _tables(con)
    con.drop_table("crm_case")
    again = ingest_folder(export, con)
    assert "Case" not in _skipped(again) and _tables(con) == fresh


def test_a_source_refused_from_another_folder_is_read_again(export: Path, tmp_path: Path):
    folder = _copy(export, tmp_path)
    opportunities = folder / "crm" / "Opportunity.csv"
    opportunities.write_text(opportunities.read_text(encoding="utf-8") + "not,a,deal\n", encoding="utf-8")
    con = connect(tmp_path / "wh.duckdb")
    first = ingest_folder(folder, con)
    quarantine = con.table("quarantine").order_by(["source", "source_line"]).to_pyarrow().to_pylist()
    assert next(s for s in first.sources if s.source == "Opportunity").rows_quarantined == 1
    other = tmp_path / "other" / "crm"
    other.mkdir(parents=True)
    (other / "Opportunity.csv").write_text("Name,Amount\nA deal without an id,10\n", encoding="utf-8")
    refused = ingest_folder(other.parent, con)
    assert refused.sources[0].status.startswith("refused")  # its quarantine row replaces the first one's
    again = ingest_folder(folder, con)
    assert "Opportunity" not in _skipped(again) and "User" in _skipped(again)
    assert con.table("quarantine").order_by(["source", "source_line"]).to_pyarrow().to_pylist() == quarantine


def test_a_changed_mapping_or_product_is_another_fingerprint(export: Path, monkeypatch: pytest.MonkeyPatch):
    import training_roi.ingest.loads as loads

    files = [(p, p.relative_to(export).as_posix()) for p in sorted((export / "crm").glob("*.csv"))]
    plain = fingerprint(files, None)[0]
    assert fingerprint(files, None)[0] == plain
    assert fingerprint(files, Mapping(name="custom"))[0] != plain
    assert fingerprint(files[1:], None)[0] != plain
    monkeypatch.setattr(loads, "product_fingerprint", lambda: "another product")
    assert fingerprint(files, None)[0] != plain
