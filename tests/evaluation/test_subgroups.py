"""Who benefits: the effect by subgroup in the report, against the simulator's truth and by hand.

Scenario ``heterogeneous``: the effect differs by region (one CRM role per region), none in
North America - West and most in EMEA. A study with ``insight.subgroups: [role]`` reports each
region's effect on its trained and its not yet trained reps; the simultaneous intervals hold every
region's true effect, the difference between regions is established, and the roll-out table's
value per rep is the effect × the region's untrained reps' recent pace and deal amount, recomputed
here from the unit-month sums.
"""

from __future__ import annotations

import json
from datetime import UTC, date
from pathlib import Path

import polars as pl
import pytest

from tests.builders import simulated_warehouse
from training_roi import Evaluation, Study, connect, evaluate
from training_roi.errors import StudyError
from training_roi.measure import monthly_panel
from training_roi.measure.tenure import tenure
from training_roi.present.answer import write_answer
from training_roi.present.result_json import result_document


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    _, warehouse, truth = simulated_warehouse(tmp_path_factory.mktemp("heterogeneous"), reps=1200, months=24, seed=5,
                                              scenario="heterogeneous")
    con = connect(warehouse)
    yield con, truth
    con.disconnect()


def _study(truth: dict, **insight) -> Study:
    return Study.model_validate({
        "name": "who benefits", "program": {"name": truth["program"]["name"],
                                            "activities": [truth["program"]["course_activity_id"]]},
        "isolation": {"bootstrap_replicates": 499}, "attribution": {"enabled": False},
        "forecast": {"enabled": False}, "insight": insight})


def test_each_region_s_interval_holds_its_true_effect(world):
    con, truth = world
    answer = evaluate(con, _study(truth, subgroups=["role"]))
    assert isinstance(answer, Evaluation) and answer.subgroups is not None
    effects = answer.subgroups.effects
    by_role = {v["role_id"]: v for v in truth["subgroups"]["regions"].values()}
    rows = effects.table.filter(pl.col("variable") == "role")
    assert set(rows["level"]) == set(by_role)
    for row in rows.iter_rows(named=True):
        t = by_role[row["level"]]
        assert row["att_sim_low"] <= t["att_win_rate_expected"] <= row["att_sim_high"], row
        assert row["atu_sim_low"] <= t["atu_win_rate_expected"] <= row["atu_sim_high"], row
    emea = next(r for r in rows.iter_rows(named=True) if r["level"] == truth["subgroups"]["regions"]["EMEA"]["role_id"])
    west = truth["subgroups"]["regions"]["North America - West"]["role_id"]
    west_row = next(r for r in rows.iter_rows(named=True) if r["level"] == west)
    assert emea["att_sim_low"] > 0  # where the program works, it is established
    assert west_row["att_sim_low"] < 0 < west_row["att_sim_high"]  # where it does nothing, no effect is claimed
    assert effects.differ["role"]["p_value"] < 0.05  # established at the study's 95%
    # The baseline thirds come along by default.
    assert {"bottom third", "middle third", "top third"} <= set(effects.table.filter(
        pl.col("variable") == "baseline")["level"])


def test_the_rollout_value_is_the_effect_times_the_recent_pipeline_by_hand(world):
    con, truth = world
    answer = evaluate(con, _study(truth, subgroups=["role"], baseline_thirds=False))
    assert isinstance(answer, Evaluation) and answer.subgroups is not None
    wb = answer.subgroups
    labels = wb.effects.labels
    assert labels is not None
    made = pl.from_arrow(monthly_panel(con).to_pyarrow())
    last = made["month"].max()
    end = date(last.year + (last.month == 12), last.month % 12 + 1, 1)
    first = date(end.year - 1, end.month, 1)  # the last twelve months of the data
    closed = pl.from_arrow(monthly_panel(con, start=first, end=end, basis="close").to_pyarrow())
    made = made.filter(pl.col("month") >= first)
    present = tenure(con, "rep")
    untrained = set(labels.filter(~pl.col("trained"))["unit"].to_list())
    months_of_benefit = round(180 / 30.4375, 2)  # the primary window, no ramp
    cost = float(answer.costs.by_category.get("licensing", 0)) / answer.primary.trained_units
    checked = 0
    for row in wb.rollout.iter_rows(named=True):
        units = set(labels.filter(pl.col("role") == row["level"])["unit"]) & untrained
        months = sum((hi - lo).days for lo, hi in (present.span(u, first, end) for u in units)) / 30.4375
        pace = float(closed.filter(pl.col("unit_id").is_in(list(units)))["closed"].sum()) / months
        mine = made.filter(pl.col("unit_id").is_in(list(units)))
        amount = float(mine["pipeline_created"].sum()) / float(mine["opportunities"].sum())
        value = row["effect"] * pace * amount * months_of_benefit * float(answer.study.value.gross_margin)
        assert row["base_per_month"] == pytest.approx(pace, rel=1e-9)
        assert row["value_per_unit"] == pytest.approx(value, rel=1e-9)
        assert row["cost_per_unit"] == pytest.approx(cost, rel=1e-9)
        assert row["roi"] == pytest.approx((value - cost) / cost, rel=1e-9)
        assert row["evidence"] == "quasi-experimental"
        checked += 1
    assert checked == 5
    lows = [r["roi_low"] for r in wb.rollout.iter_rows(named=True)]
    assert lows == sorted(lows, reverse=True)  # ranked by the conservative end


def test_no_comparison_group_means_no_breakdown(world):
    con, truth = world
    study = _study(truth, subgroups=["role"]).model_copy(
        update={"comparison": Study.model_validate({"name": "x", "program": {"name": "p", "activities": ["c"]},
                                                    "comparison": {"design": "none"}}).comparison})
    answer = evaluate(con, Study.model_validate(study.model_dump()))
    assert isinstance(answer, Evaluation) and answer.subgroups is None
    assert "no comparison group" in answer.subgroups_basis


def test_the_files_and_the_default_study(world, tmp_path: Path):
    con, truth = world
    answer = evaluate(con, _study(truth, subgroups=["role", "manager"]))
    assert isinstance(answer, Evaluation)
    files = write_answer(answer, tmp_path / "out")
    table = pl.read_csv(files["subgroups"], infer_schema=False)
    assert table.height == answer.subgroups.effects.table.height
    assert {"att_sim_low", "atu_q_value", "value_per_unit", "roi_pct_low", "evidence"} <= set(table.columns)
    doc = json.loads(result_document(answer))
    assert doc["subgroups"]["rollout"][0]["evidence"] == "quasi-experimental"
    assert "Who benefits" in files["report"].read_text(encoding="utf-8")
    # Managers lead a handful of reps each: most are too few to estimate, and the result says so.
    assert any("fewer than 10 trained or untrained units" in w for w in answer.subgroups.effects.warnings)
    plain = evaluate(con, _study(truth))
    assert "subgroups" not in json.loads(result_document(plain))  # nothing asked, nothing added


def test_an_attribute_the_unit_lacks_is_refused_by_name():
    from training_roi.study import plan_study

    study = Study.model_validate({"name": "s", "program": {"name": "p", "activities": ["c"]},
                                  "insight": {"subgroups": ["industry"]}})
    with pytest.raises(StudyError, match=r"insight\.subgroups: 'industry' is not an attribute of a rep"):
        plan_study(study)


def test_tenure_bands_by_hand():
    from datetime import datetime
    from types import SimpleNamespace

    import ibis
    import pyarrow as pa

    from training_roi.evaluation.subgroups import _tenure_bands

    con = ibis.duckdb.connect()
    hired = [datetime(2023, 1, 1, tzinfo=UTC), datetime(2021, 1, 1, tzinfo=UTC),
             datetime(2015, 3, 1, tzinfo=UTC), None, datetime(2024, 1, 1, tzinfo=UTC)]
    con.create_table("crm_user", pa.table({"user_id": ["a", "b", "c", "d", "e"],
                                           "created_at": pa.array(hired, pa.timestamp("us", "UTC"))}))
    day = date(2023, 6, 1)
    panel = SimpleNamespace(anchors=pa.table({"unit_id": ["a", "b", "c", "d", "e"], "anchor": [day] * 5}))
    # 0.4 years, 2.4, 8.3, no hire date, hired after the anchor.
    assert _tenure_bands(con, panel, ["a", "b", "c", "d", "e"]) == ["under 1 year", "1 to 3 years",
                                                                   "3 years and over", None, None]


def test_tenure_is_a_rep_grouping_only():
    from training_roi.study import plan_study

    rep = Study.model_validate({"name": "s", "program": {"name": "p", "activities": ["c"]},
                                "insight": {"subgroups": ["tenure", "role"]}})
    assert plan_study(rep).study.insight.subgroups == ["tenure", "role"]
    account = Study.model_validate({"name": "s", "program": {"name": "p", "activities": ["c"]},
                                    "population": {"unit": "account"}, "insight": {"subgroups": ["tenure"]}})
    with pytest.raises(StudyError, match="'tenure' is not an attribute of an account: expected one of type"):
        plan_study(account)
