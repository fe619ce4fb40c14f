"""A lesson's completion is not the course's completion (nor does it train a rep who dropped out)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from tests.builders import COURSE, mbox, statement, write
from training_roi.ingest.folder import ingest_folder
from training_roi.linking import link
from training_roi.measure import completions

R1, R2 = "005000000000001AAA", "005000000000002AAA"
LESSON = f"{COURSE}/lesson/01"


def test_lesson_completions_roll_up_but_do_not_complete_the_course(tmp_path: Path, con) -> None:
    in_course = {"contextActivities": {"parent": [{"id": COURSE}]}}
    lines = [
        # Rep 1 finishes lesson 1 on March 4, and the course on April 1.
        statement(1, mbox("a@x.com"), object={"id": LESSON}, context=in_course,
                  timestamp="2025-03-04T10:00:00Z"),
        statement(2, mbox("a@x.com"), timestamp="2025-04-01T10:00:00Z"),
        # Rep 2 finishes lesson 1 and drops out.
        statement(3, mbox("b@x.com"), object={"id": LESSON}, context=in_course,
                  timestamp="2025-03-05T10:00:00Z"),
    ]
    write(tmp_path / "crm" / "User.csv", f"Id,Email\n{R1},a@x.com\n{R2},b@x.com\n")
    write(tmp_path / "lms" / "statements.jsonl", "\n".join(json.dumps(s) for s in lines) + "\n")
    ingest_folder(tmp_path, con)
    link(con)
    rows = completions(con, [COURSE]).to_pyarrow().to_pylist()
    assert {r["unit_id"]: r["completed_at"] for r in rows} == {R1: datetime(2025, 4, 1, 10, tzinfo=UTC)}
    # The lesson itself can still be named as the activity that counts.
    rows = completions(con, [LESSON]).to_pyarrow().to_pylist()
    assert {r["unit_id"] for r in rows} == {R1, R2}
