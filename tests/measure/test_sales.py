"""Sales KPIs on a tiny org whose every figure is worked out by hand below."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import ibis
import pytest

from tests.builders import write
from training_roi.ingest.folder import ingest_folder
from training_roi.linking import link
from training_roi.measure import completions, monthly_panel, window_kpis

R1, R2 = "005000000000001AAA", "005000000000002AAA"
COURSE = "https://lms.example.com/course/x"

OPPS = """Id,OwnerId,StageName,Amount,CloseDate,CreatedDate,IsClosed,IsWon,IsDeleted
006000000000001AAA,{r1},Closed Won,1000,2025-01-31,2025-01-01T10:00:00.000Z,true,true,false
006000000000002AAA,{r1},Closed Lost,3000,2025-01-21,2025-01-11T10:00:00.000Z,true,false,false
006000000000003AAA,{r1},Prospecting,500,2025-06-01,2025-01-20T10:00:00.000Z,false,false,false
006000000000004AAA,{r1},Closed Won,2000,2025-03-11,2025-03-01T10:00:00.000Z,true,true,false
006000000000005AAA,{r1},Closed Won,4000,2025-03-31,2025-03-01T10:00:00.000Z,true,true,false
006000000000006AAA,{r1},Closed Won,9999,2025-03-31,2025-03-01T10:00:00.000Z,true,true,true
006000000000007AAA,{r2},Closed Lost,100,2025-01-15,2025-01-05T10:00:00.000Z,true,false,false
"""


@pytest.fixture
def org(tmp_path: Path, con):
    write(tmp_path / "crm" / "User.csv", f"Id,Email\n{R1},a@x.com\n{R2},b@x.com\n")
    write(tmp_path / "crm" / "Opportunity.csv", OPPS.format(r1=R1, r2=R2))
    write(tmp_path / "lms" / "completions.csv",
          "learner_id,learner_email,course_id,course_title,program,enrolled_at,completed_at,score,passed,minutes\n"
          f"L1,A@x.com,{COURSE},X,P,2025-01-01,2025-02-15T12:00:00Z,60,false,30\n"
          f"L1,A@x.com,{COURSE},X,P,2025-02-20,2025-02-25T12:00:00Z,90,true,30\n")
    ingest_folder(tmp_path, con)
    link(con)
    return con


def test_monthly_panel(org):
    rows = {(r["unit_id"], r["month"]): r for r in monthly_panel(org).to_pyarrow().to_pylist()}
    jan = rows[(R1, date(2025, 1, 1))]
    # January, rep 1: three deals created (1,000 won; 3,000 lost; 500 open).
    assert (jan["opportunities"], jan["closed"], jan["won"]) == (3, 2, 1)
    assert jan["win_rate"] == pytest.approx(0.5)
    assert jan["won_amount"] == pytest.approx(1000)
    assert jan["pipeline_created"] == pytest.approx(4500)
    assert jan["sales_cycle_days"] == pytest.approx((30 + 10) / 2)
    mar = rows[(R1, date(2025, 3, 1))]
    # March: the deleted 9,999 deal does not count.
    assert (mar["won"], mar["won_amount"], mar["avg_won_deal_size"]) == (2, pytest.approx(6000), pytest.approx(3000))
    assert rows[(R2, date(2025, 1, 1))]["win_rate"] == 0


def test_completion_rules(org):
    def first(rule: str, **kw: float) -> dict[str, datetime]:
        t = completions(org, [COURSE], rule=rule, **kw).to_pyarrow().to_pylist()
        return {r["unit_id"]: r["completed_at"] for r in t}

    assert first("completed") == {R1: datetime(2025, 2, 15, 12, tzinfo=UTC)}
    assert first("passed") == {R1: datetime(2025, 2, 25, 12, tzinfo=UTC)}
    assert first("min_score", min_score=75) == {R1: datetime(2025, 2, 25, 12, tzinfo=UTC)}
    assert first("completed") == first("completed")  # deterministic
    with pytest.raises(ValueError, match="completion rule"):
        completions(org, [COURSE], rule="attended")


def test_windows_anchored_at_each_units_own_date(org):
    anchors = ibis.memtable({"unit_id": [R1, R2], "anchor": [date(2025, 2, 15), date(2025, 2, 15)]})
    rows = {(r["unit_id"], r["period"]): r
            for r in window_kpis(org, anchors, baseline_days=60, window_days=30).to_pyarrow().to_pylist()}
    base, post = rows[(R1, "baseline")], rows[(R1, "post")]
    assert (base["closed"], base["won"], base["win_rate"]) == (2, 1, pytest.approx(0.5))
    assert (post["closed"], post["won"], post["win_rate"]) == (2, 2, pytest.approx(1.0))
    assert rows[(R2, "baseline")]["win_rate"] == 0
    assert (R2, "post") not in rows
    # A 20-day ramp moves March 1 (14 days after) out of the window.
    ramped = window_kpis(org, anchors, baseline_days=60, window_days=30, ramp_days=20).to_pyarrow().to_pylist()
    assert [r["period"] for r in ramped if r["unit_id"] == R1] == ["baseline"]
    with pytest.raises(ValueError, match="longer than the ramp"):
        window_kpis(org, anchors, baseline_days=60, window_days=10, ramp_days=10)


def test_all_windows_in_one_query_equal_one_query_per_window(org):
    from training_roi.measure import windows_kpis

    anchors = ibis.memtable({"unit_id": [R1, R2], "anchor": [date(2025, 2, 15), date(2025, 1, 10)]})
    every = windows_kpis(org, anchors, baseline_days=60, windows=[10, 30, 90], ramp_days=5).to_pyarrow().to_pylist()
    for w in (10, 30, 90):
        one = window_kpis(org, anchors, baseline_days=60, window_days=w, ramp_days=5).to_pyarrow().to_pylist()
        mine = [{k: v for k, v in r.items() if k != "window_days"} for r in every
                if r["period"] == "baseline" or r["window_days"] == w]
        key = lambda r: (r["unit_id"], r["period"])  # noqa: E731
        assert sorted(mine, key=key) == sorted(one, key=key)
    with pytest.raises(ValueError, match="longer than the ramp"):
        windows_kpis(org, anchors, baseline_days=60, windows=[5, 30], ramp_days=5)
