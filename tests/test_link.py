"""Identity resolution learner ↔ CRM, on a small org with every case worked out by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.builders import A1, C1, HOME, U1, U2, U3, U4, U5, write, write_small_org
from training_roi.errors import SourceError
from training_roi.ingest.folder import ingest_folder
from training_roi.linking import link
from training_roi.warehouse.quality import quality_report


@pytest.fixture
def org(tmp_path: Path) -> Path:
    return write_small_org(tmp_path)


def identities(con) -> dict[str, dict]:
    rows = con.table("learner_identity").to_pyarrow().to_pylist()
    return {r["learner_key"]: r for r in rows}


def test_each_identity_resolves_as_worked_out(con, org: Path):
    info = ingest_folder(org, con)
    assert info.ok
    summary = link(con)
    ids = identities(con)
    jane = ids["mbox:jane.doe@example.com"]
    assert (jane["crm_user_id"], jane["method"], jane["status"]) == (U1, "email", "linked")
    via_directory = ids[f"account:{HOME}|L100"]
    assert (via_directory["crm_user_id"], via_directory["method"]) == (U1, "directory")
    assert ids[f"account:{HOME}|L999"]["status"] == "unlinked"
    assert "no email" in ids[f"account:{HOME}|L999"]["detail"]
    shared = ids["mbox:shared@example.com"]
    assert shared["status"] == "ambiguous" and shared["crm_user_id"] is None
    assert U2 in shared["detail"] and U3 in shared["detail"]
    hashed = next(r for k, r in ids.items() if k.startswith("sha1:"))
    assert (hashed["crm_user_id"], hashed["method"]) == (U5, "sha1")
    customer = ids[f"account:{HOME}|L300"]
    assert (customer["crm_contact_id"], customer["crm_account_id"], customer["crm_user_id"]) == (C1, A1, None)
    assert ids["lms:L200"]["status"] == "unlinked"
    assert "no CRM user or contact has email nobody@partner.com" in ids["lms:L200"]["detail"]
    assert summary.ambiguous == 1
    assert summary.crm_users_linked == 2  # U1 (twice, one user) and U5 have learning records


def test_learning_records_leave_out_voided_and_count_duplicates_once(con, org: Path):
    ingest_folder(org, con)
    link(con)
    rec = con.table("learning_record").to_pyarrow().to_pylist()
    keys = sorted(r["record_key"].split("|")[0][-2:] for r in rec)
    # 8 statements: #7 voided by #8, #8 is the voiding statement itself, #1 delivered twice.
    assert keys == ["01", "02", "03", "04", "05", "06"]
    passed = next(r for r in rec if r["verb"] == "passed")
    assert passed["score_pct"] == pytest.approx(90.0)
    assert str(passed["occurred_at"]) .startswith("2025-03-04 15:00:00")


def test_explicit_links_override_and_unknown_ids_are_reported(con, org: Path, tmp_path: Path):
    ingest_folder(org, con)
    links = write(tmp_path / "links.csv", f"learner,crm_id\nL999,{U4}\nshared@example.com,{U2}\n"
                                          "L200,005999999999999AAA\n")
    link(con, explicit=links)
    ids = identities(con)
    assert (ids[f"account:{HOME}|L999"]["crm_user_id"], ids[f"account:{HOME}|L999"]["method"]) == (U4, "explicit")
    assert (ids["mbox:shared@example.com"]["crm_user_id"], ids["mbox:shared@example.com"]["status"]) == (U2, "linked")
    assert ids["lms:L200"]["status"] == "unlinked"
    assert "005999999999999AAA, which is not in the CRM" in ids["lms:L200"]["detail"]
    assert len(ids) == len(set(ids))


def test_explicit_link_file_errors_name_the_column(tmp_path: Path, con, org: Path):
    ingest_folder(org, con)
    bad = write(tmp_path / "bad.csv", "email,crm\nx,y\n")
    with pytest.raises(SourceError, match="column 'learner'"):
        link(con, explicit=bad)


def test_quality_report_counts_and_warns(con, org: Path):
    ingest_folder(org, con)
    link(con)
    report = quality_report(con)
    assert report.tables["lms_statement"] == 8
    assert report.link["ambiguous"] == 1
    text = "\n".join(report.warnings)
    assert "1 xAPI statements were voided" in text
    assert "1 CRM users have no email" in text
    # L100 completed (as Jane, by email and by account); L200 and L300: L300 completed, L200 did not.
    assert "1 of 3 directory learners have no completion" in text


def test_an_unfinished_enrolment_is_time_spent_not_an_outcome(tmp_path: Path, con):
    # A completion report row without a completion date: its minutes are time spent, but its partial
    # score and "not passed" say nothing about how the course went (it is not over).
    write(tmp_path / "lms" / "completions.csv",
          "learner_id,learner_email,course_id,course_title,program,enrolled_at,completed_at,score,passed,minutes\n"
          "L1,a@x.com,C1,Course,P,2025-01-01,2025-01-20T10:00:00Z,90,true,30\n"
          "L2,b@x.com,C1,Course,P,2025-01-05,,40,false,20\n")
    ingest_folder(tmp_path, con)
    link(con)
    rows = {r["learner_key"]: r for r in con.table("learning_record").to_pyarrow().to_pylist()}
    assert rows["lms:L1"]["verb"] == "completed" and rows["lms:L1"]["success"] is True
    unfinished = rows["lms:L2"]
    assert unfinished["verb"] == "attempted" and unfinished["minutes"] == 20
    assert unfinished["success"] is None and unfinished["score_pct"] is None
