"""The KPI catalogue: sales KPIs worked out by hand, unavailability, pooling and changes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from tests.builders import put_rows as _put
from training_roi.measure.catalogue import CATALOGUE, GRAINS, Options, availability, changes, compute, describe
from training_roi.warehouse.connection import connect, ensure_tables
from training_roi.warehouse.schema import TABLES

JAN, FEB, MAR, APR = (date(2025, m, 1) for m in (1, 2, 3, 4))
SALES = ("win_rate", "avg_won_deal_size", "sales_cycle_days", "pipeline_created", "revenue_per_rep",
         "lead_conversion", "pipeline_velocity")



def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 10, tzinfo=UTC)


def _opp(i: str, owner: str | None, account: str, created: date, close: date, *, won: bool | None, amount: float,
         deleted: bool = False) -> dict:
    return {"opportunity_id": i, "owner_id": owner, "account_id": account, "created_at": _at(created),
            "close_date": close, "is_closed": won is not None, "is_won": bool(won), "amount": amount,
            "stage_name": "Closed" if won is not None else "Open", "is_deleted": deleted}


@pytest.fixture
def org(tmp_path: Path):
    con = connect(tmp_path / "w.duckdb")
    ensure_tables(con)
    _put(con, "crm_user", [{"user_id": "U1", "manager_id": "M1"}, {"user_id": "U2", "manager_id": "M1"},
                           {"user_id": "U3", "manager_id": "M2"}])
    _put(con, "crm_opportunity", [
        _opp("O1", "U1", "A1", date(2025, 1, 5), date(2025, 1, 25), won=True, amount=1000),  # 20 days
        _opp("O2", "U1", "A1", date(2025, 1, 10), date(2025, 2, 9), won=False, amount=400),  # 30 days
        _opp("O3", "U1", "A2", date(2025, 1, 20), date(2025, 4, 30), won=None, amount=600),
        _opp("O4", "U2", "A2", date(2025, 2, 1), date(2025, 2, 11), won=True, amount=3000),  # 10 days
        _opp("O5", "U2", "A3", date(2025, 3, 3), date(2025, 3, 13), won=True, amount=500),  # 10 days
        _opp("O6", "U3", "A3", date(2025, 3, 10), date(2025, 5, 1), won=None, amount=800),
        _opp("O7", "U1", "A1", date(2025, 1, 5), date(2025, 1, 25), won=True, amount=9999, deleted=True),
    ])
    _put(con, "crm_lead", [
        {"lead_id": "L1", "owner_id": "U1", "created_at": _at(date(2025, 1, 3)), "is_converted": True,
         "is_deleted": False},
        {"lead_id": "L2", "owner_id": "U1", "created_at": _at(date(2025, 1, 4)), "is_converted": False,
         "is_deleted": False},
        {"lead_id": "L3", "owner_id": "U2", "created_at": _at(date(2025, 2, 4)), "is_converted": True,
         "is_deleted": False},
        {"lead_id": "L4", "owner_id": "U2", "created_at": _at(date(2025, 2, 5)), "is_converted": True,
         "is_deleted": True},
    ])
    yield con
    con.disconnect()


def _values(con, kpi: str, **kw: object) -> dict:
    frame = compute(con, [kpi], **kw)
    assert frame["reason"].is_null().all(), frame["reason"].to_list()
    return {(r["grain_id"], r["period"]): r["value"] for r in frame.iter_rows(named=True)}


def test_sales_kpis_by_hand(org):
    # Deals by creation month: January O1 won 1,000, O2 lost, O3 open; February O4 won 3,000;
    # March O5 won 500, O6 open. O7 is deleted.
    assert _values(org, "win_rate", basis="created") == {("org", JAN): 0.5, ("org", FEB): 1.0, ("org", MAR): 1.0}
    assert _values(org, "win_rate", monthly=False) == {("org", None): 3 / 4}
    assert _values(org, "avg_won_deal_size", monthly=False) == {("org", None): 4500 / 3}
    assert _values(org, "sales_cycle_days", monthly=False) == {("org", None): (20 + 30 + 10 + 10) / 4}
    # Rep-months: U1 January, U2 February and March, U3 March (each rep's first to last month).
    assert _values(org, "pipeline_created") == {("org", JAN): 2000.0, ("org", FEB): 3000.0,
                                                ("org", MAR): (500 + 800) / 2}
    assert _values(org, "pipeline_created", monthly=False) == {("org", None): 6300 / 4}
    assert _values(org, "revenue_per_rep", monthly=False, grain="rep", basis="created") == {
        ("U1", None): 1000.0, ("U2", None): 3500 / 2, ("U3", None): 0.0}
    # By close month U1's months run from January (O1 created) to February (O2 closed).
    assert _values(org, "revenue_per_rep", monthly=False, grain="rep") == {
        ("U1", None): 1000.0 / 2, ("U2", None): 3500 / 2, ("U3", None): 0.0}
    assert _values(org, "win_rate", monthly=False, grain="account") == {
        ("A1", None): 0.5, ("A2", None): 1.0, ("A3", None): 1.0}
    # M2 (U3) has no closed deal: a null win rate, not zero.
    assert _values(org, "win_rate", monthly=False, grain="team") == {("M1", None): 0.75, ("M2", None): None}


def test_lead_conversion(org):
    assert _values(org, "lead_conversion") == {("org", JAN): 0.5, ("org", FEB): 1.0}
    assert _values(org, "lead_conversion", monthly=False) == {("org", None): pytest.approx(2 / 3)}


def test_pipeline_velocity(org):
    # Open at month ends: January O2 (closes 9 Feb) and O3; February O3; March O3 and O6.
    # January: 2 open × win rate 1/2 × deal size 1,000 ÷ cycle 25 days = 40 a day.
    # February: 1 × 1 × 3,000 ÷ 10 = 300. March: 2 × 1 × 500 ÷ 10 = 100.
    assert _values(org, "pipeline_velocity", basis="created") == {
        ("org", JAN): pytest.approx(40), ("org", FEB): pytest.approx(300), ("org", MAR): pytest.approx(100)}
    # Whole period: 5/3 open on average × 3/4 × 1,500 ÷ 17.5 days.
    whole = pytest.approx(5 / 3 * 0.75 * 1500 / 17.5)
    assert _values(org, "pipeline_velocity", monthly=False) == {("org", None): whole}


def test_quota_attainment(org):
    quotas = pl.DataFrame({"owner_id": ["U1", "U2", "U2"], "month": [JAN, FEB, MAR], "quota": [2000.0, 2000, 1000]})
    # Won by close date: U1 1,000 in January; U2 3,000 in February, 500 in March. U3 has no quota.
    got = _values(org, "quota_attainment", grain="rep", quotas=quotas)
    assert got == {("U1", JAN): 0.5, ("U2", FEB): 1.5, ("U2", MAR): 0.5}
    assert _values(org, "quota_attainment", monthly=False, quotas=quotas) == {("org", None): 4500 / 5000}
    frame = compute(org, ["quota_attainment"])
    assert frame.select("value", "reason").row(0) == (None, "no quotas given")
    with pytest.raises(ValueError, match="quota"):
        compute(org, ["quota_attainment"], quotas=quotas.drop("quota"))


def test_monthly_values_pool_to_the_whole_period(org):
    monthly = compute(org, SALES, grain="rep")
    whole = compute(org, SALES, grain="rep", monthly=False)
    ratios = [k for k in SALES if CATALOGUE[k].finish is None]
    sums = monthly.filter(pl.col("kpi").is_in(ratios)).group_by("kpi", "grain_id").agg(
        pl.col("numerator").sum(), pl.col("denominator").sum())
    joined = sums.join(whole, on=["kpi", "grain_id"], suffix="_whole")
    assert joined.height == whole.filter(pl.col("kpi").is_in(ratios)).height == len(ratios) * 3 - 1  # lead: U1, U2
    assert joined["numerator"].to_list() == pytest.approx(joined["numerator_whole"].to_list())
    assert joined["denominator"].to_list() == pytest.approx(joined["denominator_whole"].to_list())
    measured = joined.filter(pl.col("denominator") > 0)
    assert measured.height == 17 - 3  # U3 closed and won nothing: no win rate, deal size or cycle
    assert (measured["numerator"] / measured["denominator"]).to_list() == pytest.approx(measured["value"].to_list())
    assert joined.filter(pl.col("denominator") == 0)["value"].null_count() == 3


def test_unavailable_kpis_say_why(org):
    org.drop_table("crm_case")
    frame = compute(org, ["case_response_hours", "csat", "task_completion_rate", "win_rate"])
    assert frame["value"][:3].to_list() == [None, None, None]
    no_cases = "the warehouse has no crm_case table"
    assert frame["reason"].to_list()[:3] == [no_cases, no_cases, "crm_activity is empty"]
    assert frame["reason"][3] is None
    assert availability(org, "lead_conversion", options=Options(grain="account")) == (
        "lead conversion rate is measured per rep, team, org, not per account")
    assert availability(org, "win_rate", options=Options(grain="team")) is None


def test_teams_need_managers(tmp_path: Path):
    con = connect(tmp_path / "w.duckdb")
    ensure_tables(con)
    _put(con, "crm_user", [{"user_id": "U1"}])
    _put(con, "crm_opportunity", [_opp("O1", "U1", "A1", date(2025, 1, 5), date(2025, 1, 25), won=True, amount=1)])
    assert availability(con, "win_rate") is None
    why = availability(con, "win_rate", options=Options(grain="team"))
    assert why == "teams are the reps sharing a manager: crm_user.manager_id is empty in every row"
    con.disconnect()


def test_an_empty_period_says_so(org):
    frame = compute(org, ["win_rate"], since=date(2030, 1, 1), until=date(2030, 2, 1))
    assert frame["reason"].to_list() == ["no data for win rate from 2030-01-01 to 2030-02-01 (exclusive)"]
    with pytest.raises(ValueError, match="period is empty"):
        compute(org, ["win_rate"], since=FEB, until=JAN)
    with pytest.raises(ValueError, match="unknown KPI 'wins'"):
        compute(org, ["wins"])
    with pytest.raises(ValueError, match="grain 'region'"):
        compute(org, ["win_rate"], grain="region")


def test_changes_month_over_month_and_year_over_year():
    months = [date(2024, 1, 1), date(2024, 2, 1), date(2025, 1, 1), date(2025, 3, 1)]
    frame = pl.DataFrame({"kpi": ["win_rate"] * 4, "period": months, "grain_id": ["org"] * 4,
                          "value": [0.2, 0.25, 0.3, 0.4]})
    got = changes(frame)
    assert got["mom"].to_list() == [None, pytest.approx(0.05), None, None]  # March 2025 follows no February
    assert got["mom_rel"][1] == pytest.approx(0.05 / 0.2)
    assert got["yoy"].to_list() == [None, None, pytest.approx(0.1), None]
    assert got["yoy_rel"][2] == pytest.approx(0.1 / 0.2)


def test_every_kpi_is_described_against_the_schema():
    units = {"rate", "money", "money/day", "days", "hours", "minutes", "count", "score"}
    for kpi in CATALOGUE.values():
        assert kpi.unit in units, kpi.name
        assert set(kpi.grains) <= set(GRAINS) and kpi.definition, kpi.name
        for source in (*kpi.sources, *kpi.any_source):
            assert set(source.fields) <= set(TABLES[source.table].names), (kpi.name, source)


def test_describe():
    assert describe(0.1234, "rate") == "12.3%"
    assert describe(1234567.4, "money") == "$1,234,567"
    assert describe(-40, "money/day") == "−$40/day"
    assert describe(13.26, "hours") == "13.3 hours"
    assert describe(None, "score") == "—"


def test_win_rate_by_close_month_by_hand(org):
    # By the month each deal closed: January O1 won (25 Jan); February O2 lost (9 Feb) and O4 won
    # (11 Feb); March O5 won (13 Mar). Open deals (O3, O6) have no outcome; O7 is deleted.
    frame = compute(org, ["win_rate"])
    rows = {r["period"]: r for r in frame.iter_rows(named=True)}
    assert {p: (r["numerator"], r["denominator"]) for p, r in rows.items()} == {
        JAN: (1, 1), FEB: (1, 2), MAR: (1, 1)}
    assert {r["basis"] for r in rows.values()} == {"close month"}
    assert compute(org, ["win_rate"], basis="created")["basis"].unique().to_list() == ["creation month"]
    # The data ends on 13 March (the latest close of a closed deal): March is not over.
    assert [p for p, r in rows.items() if r["provisional"]] == [MAR]
    assert rows[MAR]["provisional_reason"] == "the month was not over when the data ends (2025-03-13)"
    assert rows[FEB]["as_of"] == date(2025, 3, 13)
    got = {r["period"]: r for r in changes(frame).iter_rows(named=True)}
    assert got[FEB]["mom"] == pytest.approx(0.5 - 1.0)
    assert got[MAR]["mom"] is None and got[MAR]["change_note"] == "no change computed: this month is provisional"


def test_creation_months_with_open_deals_are_provisional(org):
    # By creation month: January's deals O1, O2, O3 — O3 open, 1 of 3 (over 20%); February's O4
    # closed; March's O5 closed, O6 open (and the month not over).
    frame = compute(org, ["win_rate"], basis="created")
    rows = {r["period"]: r for r in frame.iter_rows(named=True)}
    assert {p for p, r in rows.items() if r["provisional"]} == {JAN, MAR}
    assert rows[JAN]["provisional_reason"] == "33.3% of the month's deals still open (provisional above 20%)"
    # February is complete, but January before it is not: no change is computed against it.
    got = {r["period"]: r for r in changes(frame).iter_rows(named=True)}
    assert got[FEB]["mom"] is None and got[FEB]["change_note"] == "no month-over-month change: Jan 2025 is provisional"
    # Pipeline created is dated by creation: only the calendar makes it provisional.
    pipeline = compute(org, ["pipeline_created"])
    assert pipeline.filter(pl.col("provisional"))["period"].to_list() == [MAR]


def test_deals_without_an_owner_count_for_the_org_and_as_no_owner(org):
    _put(org, "crm_opportunity", [
        _opp("O8", None, "A1", date(2025, 2, 3), date(2025, 2, 20), won=False, amount=700),
        _opp("O9", None, "A2", date(2025, 2, 4), date(2025, 2, 21), won=True, amount=300),
    ])
    raw = org.table("crm_opportunity").to_pyarrow().to_pylist()
    closed = [r for r in raw if r["is_closed"] and not r["is_deleted"]]
    assert len(closed) == 6
    whole = _values(org, "win_rate", monthly=False)
    assert whole == {("org", None): sum(r["is_won"] for r in closed) / len(closed)}  # 4 won of 6
    by_rep = _values(org, "win_rate", monthly=False, grain="rep")
    assert by_rep[("(no owner)", None)] == 1 / 2
    assert set(by_rep) == {("U1", None), ("U2", None), ("U3", None), ("(no owner)", None)}
    # At the team grain the ownerless deals are "(no owner)" too; the units add up to the org.
    teams = compute(org, ["win_rate"], monthly=False, grain="team")
    assert sorted(teams["grain_id"].to_list()) == ["(no owner)", "M1", "M2"]
    assert teams["numerator"].sum() / teams["denominator"].sum() == whole[("org", None)]
