"""`training-roi report`: the whole answer on simulated orgs with known truth."""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.builders import simulated_warehouse
from training_roi.cli import app
from training_roi.study import load_study
from training_roi.warehouse.connection import connect

runner = CliRunner()


def _org(tmp_path_factory: pytest.TempPathFactory, scenario: str, seed: int) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp(scenario)
    _, _, truth = simulated_warehouse(root, reps=300, months=24, seed=seed, scenario=scenario)
    study = {
        "name": "Sales Excellence",
        "program": {"name": truth["program"]["name"], "activities": [truth["program"]["course_activity_id"]]},
        "costs": {"participant_time": {"hourly_rate": 60}},
        "isolation": {"bootstrap_replicates": 1000, "seed": seed},
    }
    (root / "study.yaml").write_text(yaml.safe_dump(study), encoding="utf-8")
    return root / "study.yaml", root / "roi.duckdb", truth


@pytest.fixture(scope="module")
def randomised(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    return _org(tmp_path_factory, "randomised", 31)


def test_report_answers_with_the_seed_model_and_covers_the_truth(randomised, tmp_path: Path):
    study, db, truth = randomised
    result = runner.invoke(app, ["report", str(study), "--db", str(db), "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["schema"] == "training-roi/result/2"
    assert doc["study"]["hash"] == load_study(study).hash
    assert doc["data"]["crm_opportunity"] > 1000
    head = doc["headline"]
    assert head["window_days"] == 180
    did = head["did"]
    assert did["ci_low"] <= truth["truth"]["windows"]["180"]["att_win_rate"] <= did["ci_high"]
    # The seed model, recomputed independently from the document's own figures: its row.
    credited = Decimal(str(head["credit"]["credited"]))
    pipeline = Decimal(head["pipeline_value"])
    cost = Decimal(doc["costs"]["total"])
    seed = head["revenue"]["seed"]
    # The seed formula as the seed wrote it: the lift × the pipeline (central); credited by the same rule as the rest.
    assert Decimal(seed["estimate"]) == pytest.approx(Decimal(str(did["estimate"])) * pipeline, abs=Decimal("0.01"))
    assert Decimal(seed["credited"]) <= max(Decimal(seed["estimate"]), Decimal(0))
    assert credited >= 0
    # The credited revenue is booked revenue's one-sided lower bound (or nothing); ROI follows it.
    booked = head["revenue"]["booked"]
    assert head["revenue_definition"] == "booked"
    incremental = Decimal(head["incremental_revenue"])
    assert incremental == Decimal(booked["credited"])
    lo, hi = booked["interval"]
    assert lo <= float(booked["estimate"]) <= hi
    assert incremental == 0 or lo <= float(incremental) <= float(booked["estimate"])
    assert Decimal(head["roi_pct"]) == ((incremental - cost) / cost * 100).quantize(Decimal("0.01"))
    central = head["central"]
    assert Decimal(central["incremental_revenue"]) == Decimal(booked["estimate"])
    assert 0 <= central["prob_positive"] <= 1 and Decimal(central["break_even_revenue"]) == cost
    assert [w["window_days"] for w in doc["windows"]] == [90, 180, 365]
    assert all(n["biased"] for n in head["naive"])
    # The seed's spreadsheet: one row per trained learner, summing to the window's figures.
    learners = head["learners"]
    assert len(learners) == head["trained_units"]
    assert sum(Decimal(r["pipeline_value"]) for r in learners) == pytest.approx(pipeline, abs=Decimal("1"))
    assert sum(r["opportunities_in_window"] for r in learners) == head["opportunities_in_window"]
    assert sum(Decimal(r["cost"]) for r in learners) == pytest.approx(cost, abs=Decimal("0.01") * len(learners))
    assert all(w["learners"] == [] for w in doc["windows"] if w["window_days"] != 180)
    # The seed's spreadsheet as CSV: one row per deal in the trained reps' windows, adding up to
    # the report's pipeline and incremental revenue.
    import polars as pl

    deals = pl.read_csv(tmp_path / "opportunities.csv", infer_schema_length=None)
    assert deals.height == head["opportunities_in_window"]
    assert Decimal(str(deals["amount"].fill_null(0).sum())).quantize(Decimal("0.01")) == pipeline
    assert float(deals["incremental_revenue"].sum()) == pytest.approx(float(incremental), abs=0.01 * deals.height)
    assert deals["unit_id"].n_unique() <= head["trained_units"]
    assert (deals["created"] >= deals["completion_date"]).all()
    assert pl.read_csv(tmp_path / "learners.csv").height == head["trained_units"]
    # Same data + same study = same bytes.
    again = runner.invoke(app, ["report", str(study), "--db", str(db), "--out", str(tmp_path / "again")])
    assert again.exit_code == 0
    assert (tmp_path / "result.json").read_bytes() == (tmp_path / "again" / "result.json").read_bytes()
    assert "Training ROI" in again.stdout
    assert "$" in again.stdout
    # The HTML report: one self-contained file, the headline as users write money, the chart inline.
    html = (tmp_path / "again" / "report.html").read_text(encoding="utf-8")
    assert "<svg" in html
    assert "<script" not in html
    assert 'src="http' not in html
    assert "<link" not in html
    assert f"${float(central['incremental_revenue']):,.0f}" in html
    assert f"${float(doc['costs']['total']):,.0f}" in html
    assert html.count("<tr>") > len(learners)  # the per-learner table is there
    assert "Naive comparisons (biased" in html


def test_no_effect_credits_nothing(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path):
    study, db, truth = _org(tmp_path_factory, "null", 32)
    assert truth["truth"]["windows"]["180"]["att_win_rate"] == 0
    result = runner.invoke(app, ["report", str(study), "--db", str(db), "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["established"] is False
    assert Decimal(doc["headline"]["incremental_revenue"]) == 0
    assert doc["warnings"][0].startswith("no incremental revenue is credited")
    # Never a bare −100%: the top says so in words, with the central ROI, its interval and the odds.
    console = runner.invoke(app, ["report", str(study), "--db", str(db), "--out", str(tmp_path / "c")])
    top = " ".join(console.stdout.split("Effect (")[0].split())
    assert "effect on revenue is not established" in top and "nothing is credited" in top
    assert "Central ROI" in top and "P(ROI > 0)" in top and "gross margin" in top
    central = doc["headline"]["central"]
    assert central["roi_interval"][0] < float(central["roi_pct"]) < central["roi_interval"][1]


def test_studies_the_warehouse_cannot_answer_get_one_clear_message(randomised, tmp_path: Path):
    study, db, _ = randomised
    settings = yaml.safe_load(study.read_text())
    settings["program"]["activities"] = ["https://lms.example.com/no-such-course"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(settings), encoding="utf-8")
    result = runner.invoke(app, ["report", str(bad), "--db", str(db), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "nobody completed the program's activities" in result.stderr
    settings = yaml.safe_load(study.read_text())
    settings["windows"] = {"primary_days": -5}
    bad.write_text(yaml.safe_dump(settings), encoding="utf-8")
    result = runner.invoke(app, ["report", str(bad), "--db", str(db)])
    assert result.exit_code == 2
    assert "windows.primary_days" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_population_exclude_list_alone_keeps_everyone_else(randomised):
    study_file, db, _ = randomised
    con = connect(db)
    from training_roi.evaluation import evaluate

    base = evaluate(con, load_study(study_file))
    settings = yaml.safe_load(study_file.read_text())
    first = base.primary.learners[0].unit_id
    settings["population"] = {"exclude": [first]}
    narrowed = study_file.with_name("exclude.yaml")
    narrowed.write_text(yaml.safe_dump(settings), encoding="utf-8")
    result = evaluate(con, load_study(narrowed))
    assert result.primary.trained_units == base.primary.trained_units - 1
    assert result.primary.comparison_units == base.primary.comparison_units
    con.disconnect()


def test_every_kpi_is_isolated_and_the_secondary_ones_cover_their_truth(randomised):
    study_file, db, truth = randomised
    from training_roi.evaluation import evaluate

    con = connect(db)
    ev = evaluate(con, load_study(study_file))
    con.disconnect()
    kpis = {k.kpi: k for k in ev.primary.kpis}
    assert list(kpis) == ["win_rate", "avg_won_deal_size", "sales_cycle_days", "pipeline_created", "revenue_per_rep"]
    assert kpis["win_rate"].did == ev.primary.did  # the headline is the win-rate row
    # Trend months still maturing: more than 20% of the group's deals created that month still open.
    assert any(r["provisional"] for r in ev.trend)
    for r in ev.trend:
        assert r["provisional"] == ((r["opportunities"] - r["closed"]) / r["opportunities"] > 0.2), r
    true = truth["truth"]["windows"]["180"]
    size, cycle = kpis["avg_won_deal_size"].did, kpis["sales_cycle_days"].did
    assert size is not None and cycle is not None
    assert size.ci_low <= true["att_avg_won_deal_size"] <= size.ci_high
    assert cycle.ci_low <= true["att_cycle_days"] <= cycle.ci_high
    assert not kpis["sales_cycle_days"].higher_is_better
    for k in kpis.values():
        assert k.verdict in ("improved", "worsened", "not established")
        assert (k.verdict != "not established") == k.credit.is_credited
    # The sensitivity table: the lift's base row is the primary window's estimate × pipeline.
    base = next(r for r in ev.sensitivity if r.lever == "lift" and r.case == "base")
    assert base.incremental_revenue == (Decimal(str(ev.primary.did.estimate)) * ev.primary.pipeline_value).quantize(
        Decimal("0.01"))
    assert {r.lever for r in ev.sensitivity} == {"lift", "window", "deal size"}
    # The report says how likely each KPI improved: for a shorter-is-better cycle, the chance it fell.
    from training_roi.present.html import render_html

    row = next(r for r in render_html(ev).split("<tr>") if f"{kpis['sales_cycle_days'].label} (lower is better)" in r)
    assert f">{(1 - cycle.prob_positive) * 100:.1f}%<" in row
    assert "P(improvement)" in render_html(ev)


def test_revenue_per_rep_can_lead_and_cycle_days_cannot(randomised, tmp_path: Path):
    study_file, db, _ = randomised
    from training_roi.evaluation import evaluate
    from training_roi.study import StudyError

    settings = yaml.safe_load(study_file.read_text())
    settings["headline_kpi"] = "revenue_per_rep"
    path = tmp_path / "revenue.yaml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    con = connect(db)
    ev = evaluate(con, load_study(path))
    head = ev.primary
    assert head.headline_kpi == "revenue_per_rep"
    assert head.did == next(k.did for k in head.kpis if k.kpi == "revenue_per_rep")
    assert "rep-month" in head.revenue["seed"].meaning
    # Value base: the trained reps' months in the window, at most 180 days each.
    assert 0 < head.value_base <= Decimal(head.trained_units) * Decimal(180) / Decimal("30.4375") + Decimal("0.001")
    assert head.incremental_revenue == pytest.approx(Decimal(str(head.credit.credited)) * head.value_base,
                                                     abs=Decimal("0.01"))
    settings["headline_kpi"] = "sales_cycle_days"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    with pytest.raises(StudyError, match="headline_kpi: sales_cycle_days cannot be turned into revenue"):
        load_study(path)
    con.disconnect()


def test_holdout_file_is_read_relative_to_the_study(randomised, tmp_path: Path):
    study_file, db, _ = randomised
    from training_roi.evaluation import evaluate
    from training_roi.study import StudyError

    con = connect(db)
    base = evaluate(con, load_study(study_file))
    trained = {r.unit_id for r in base.primary.learners}
    owners = sorted(set(con.table("crm_opportunity").owner_id.to_pyarrow().to_pylist()) - trained - {None})
    held = owners[:40]
    (tmp_path / "holdout.csv").write_text("user_id\n# reps kept out of wave 1\n" + "\n".join(held) + "\n")
    settings = yaml.safe_load(study_file.read_text())
    settings["comparison"] = {"design": "holdout", "holdout_file": "holdout.csv"}
    path = tmp_path / "holdout.yaml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    study = load_study(path)
    assert study.comparison.holdout == sorted(held)
    ev = evaluate(con, study)
    assert ev.primary.comparison_units == 40
    assert ev.primary.trained_units == base.primary.trained_units
    # The hash covers who was held out, not only the file's name.
    (tmp_path / "holdout.csv").write_text("\n".join(held[:39]) + "\n")
    assert load_study(path).hash != study.hash
    (tmp_path / "holdout.csv").unlink()
    with pytest.raises(StudyError, match=r"comparison.*holdout_file: .*no such file"):
        load_study(path)
    con.disconnect()


def test_method_all_puts_every_estimator_side_by_side(randomised, tmp_path: Path):
    study, db, truth = randomised
    result = runner.invoke(app, ["report", str(study), "--db", str(db), "--out", str(tmp_path), "--json",
                                 "--method", "all"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["study"]["settings"]["isolation"]["method"] == "all"
    assert doc["study"]["hash"] != load_study(study).hash  # the method is part of what produced the numbers
    methods = {r["method"]: r for r in doc["methods"]["results"]}
    assert set(methods) == {"twfe", "event_study", "staggered", "staggered_dr", "drdid", "psm", "ipw", "cem", "trend",
                            "participant", "naive_before_after", "naive_after"}
    assert methods["participant"]["effect"] is not None  # the simulator writes estimate answers
    for naive in ("naive_before_after", "naive_after"):  # listed as the references they are, labelled biased
        assert methods[naive]["effect"]["biased"] and methods[naive]["refutations"] == []
    recommended = doc["methods"]["recommended"]
    assert recommended in methods and methods[recommended]["effect"] is not None
    assert not methods[recommended]["effect"]["biased"]
    assert doc["methods"]["reason"]
    evidence = doc["methods"]["evidence"]
    assert evidence["pre_trends"] and evidence["cohorts"] >= 1
    assert evidence["roi_trend_sensitivity"].startswith("ROI") and evidence["roi_trend_breakdown"] >= 0
    # Under parallel trends (M̄ = 0) ROI ≤ 0 is possible exactly when the lift's interval reaches the break-even
    # lift, the cost over the value base (margin 1): the breakdown is 0 then, and only then.
    head = doc["headline"]
    break_even = float(head["central"]["break_even_revenue"]) / float(head["value_base"])
    parallel = methods["event_study"]["effect"]["diagnostics"]["sensitivity"]["rows"][0]
    assert parallel["bound"] == 0.0
    assert (evidence["roi_trend_breakdown"] == 0) == (parallel["ci_low"] <= break_even)
    true = truth["truth"]["windows"]["180"]["att_win_rate"]
    for m in ("twfe", "staggered"):
        e = methods[m]["effect"]
        assert e["ci_low"] <= true <= e["ci_high"], (m, e["estimate"], true)
        assert {r["test"] for r in methods[m]["refutations"]} >= {"placebo date", "placebo treatment"}
    windows = {w["window_days"]: {r["method"]: r for r in w["results"]} for w in doc["methods"]["windows"]}
    assert set(windows) == {90, 365}  # every attribution window besides the primary one
    assert windows[365]["twfe"]["effect"] is not None and windows[365]["twfe"]["refutations"] == []
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Every method, side by side" in html and "★" in html
    assert "The same methods in every attribution window" in html
    # Every probability the methods show is the chance of improvement, said so, in the report and the console.
    methods_table = html[html.index('<details id="methods"'):]
    methods_table = methods_table[:methods_table.index("</details>")]
    assert "P(improvement)" in methods_table and "P(effect &gt; 0)" not in html
    twfe = methods["twfe"]["effect"]
    shown = (Decimal(repr(twfe["prob_positive"])) * 100).quantize(Decimal("0.1"), ROUND_HALF_UP)
    assert f">{shown}%<" in methods_table  # win rate: higher is better, so P(improvement) is P(effect > 0)
    again = runner.invoke(app, ["report", str(study), "--db", str(db), "--out", str(tmp_path / "again"),
                                "--method", "all"])
    assert again.exit_code == 0
    assert "P(improvement)" in again.stdout and "P(effect > 0)" not in again.stdout
    assert (tmp_path / "result.json").read_bytes() == (tmp_path / "again" / "result.json").read_bytes()
    bad = runner.invoke(app, ["report", str(study), "--db", str(db), "--out", str(tmp_path), "--method", "magic"])
    assert bad.exit_code == 2 and "expected one of did, all, twfe" in bad.stderr
    # The credited value follows the recommendation: the windowed DiD when that is the comparison-group
    # design (the holdout here is random), else the recommended estimator itself.
    design = doc["design"]
    assert design["reason"].startswith("recommended: ")
    if recommended == "twfe":
        assert design["method"] == "did" and doc["headline"]["did"]["method"] == "difference-in-differences"
    else:
        assert design["method"] == recommended
        assert doc["headline"]["did"]["estimate"] == methods[recommended]["effect"]["estimate"]


def test_a_named_estimator_produces_the_credited_value(randomised, tmp_path: Path):
    """``isolation.method: staggered``: its effect is credited, valued and carried into every window."""
    from training_roi.evaluation import evaluate

    study_file, db, truth = randomised
    study = load_study(study_file)
    study = study.model_copy(update={"isolation": study.isolation.model_copy(update={"method": "staggered"})})
    con = connect(db)
    ev = evaluate(con, study)
    con.disconnect()
    p = ev.primary
    assert ev.methods is not None and [r.method for r in ev.methods.results] == ["staggered"]
    own = ev.methods.result("staggered")
    assert own is not None and own.effect is not None
    assert p.design == "staggered" and p.did is own.effect and "named by the study" in ev.design_reason
    assert p.did.ci_low <= truth["truth"]["windows"]["180"]["att_win_rate"] <= p.did.ci_high
    # The seed's formula with this design's credited lift, and its interval from the lift's interval.
    assert p.incremental_revenue == (Decimal(str(p.credit.credited)) * p.value_base).quantize(Decimal("0.01"))
    if p.credit.is_credited:
        low, high = p.intervals["incremental_revenue"]
        assert low == pytest.approx(p.did.ci_low * float(p.value_base))
        assert high == pytest.approx(p.did.ci_high * float(p.value_base))
    for w in ev.windows:  # every window credits the same design, measured over that window
        other = own if w is p else dict(ev.methods_by_window)[w.window_days].result("staggered")
        assert w.design == "staggered" and other is not None and w.did is other.effect
    # The KPI table still shows every KPI's windowed difference-in-differences.
    head = next(k for k in p.kpis if k.kpi == "win_rate")
    assert head.did is not None and head.did.method == "difference-in-differences"


def test_a_named_estimator_that_cannot_apply_credits_nothing_and_says_why(randomised, tmp_path: Path):
    import shutil

    from training_roi.evaluation import evaluate

    study_file, db, _ = randomised
    copy = tmp_path / "roi.duckdb"
    shutil.copy(db, copy)
    con = connect(copy)
    con.raw_sql("DELETE FROM survey_response")
    study = load_study(study_file)
    study = study.model_copy(update={"isolation": study.isolation.model_copy(update={"method": "participant"})})
    ev = evaluate(con, study)
    con.disconnect()
    assert ev.primary.design == "participant" and ev.primary.did is None
    assert not ev.established and ev.primary.incremental_revenue == 0
    assert "cannot be applied to this data: nobody answered an estimate question" in ev.primary.credit.why
    assert ev.warnings[0].startswith("no incremental revenue is credited")
    assert "nobody answered an estimate question" in ev.warnings[0]


def test_an_under_powered_study_says_so(randomised):
    study_file, db, _ = randomised
    from training_roi.evaluation import evaluate

    con = connect(db)
    ev = evaluate(con, load_study(study_file))
    con.disconnect()
    p = ev.primary
    assert p.did is not None and p.minimum_detectable_lift is not None
    # 300 reps with a few closed deals each cannot detect much less than several points.
    assert 0.01 < p.minimum_detectable_lift < 0.5
    under = abs(p.did.estimate) < p.minimum_detectable_lift
    assert (p.power_warning is not None) == under
    if under:
        assert "under-powered" in p.power_warning and p.power_warning in ev.warnings
    shorter = next(w for w in ev.windows if w.window_days == 90)
    assert shorter.minimum_detectable_lift > p.minimum_detectable_lift  # fewer deals, larger MDE


def test_design_writes_a_reproducible_balanced_assignment(randomised, tmp_path: Path):
    import polars as pl

    _, db, _ = randomised
    first = runner.invoke(app, ["design", str(tmp_path / "a.csv"), "--db", str(db), "--holdout", "0.25"])
    assert first.exit_code == 0, first.stderr
    assert "detects a lift of +" in first.stdout
    again = runner.invoke(app, ["design", str(tmp_path / "b.csv"), "--db", str(db), "--holdout", "0.25"])
    assert again.exit_code == 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()  # the seed redraws it
    other = runner.invoke(app, ["design", str(tmp_path / "c.csv"), "--db", str(db), "--holdout", "0.25",
                                "--seed", "8"])
    assert other.exit_code == 0
    assert (tmp_path / "a.csv").read_bytes() != (tmp_path / "c.csv").read_bytes()
    a = pl.read_csv(tmp_path / "a.csv")
    owners = connect(db).table("crm_opportunity").owner_id.to_pyarrow().to_pylist()
    assert set(a["unit"]) <= set(owners) and a["unit"].n_unique() == a.height
    share = a.filter(pl.col("wave") == 0).height / a.height
    assert share == pytest.approx(0.25, abs=0.02)
    waves = a.filter(pl.col("wave") > 0).group_by("wave").len()["len"].to_list()
    assert max(waves) - min(waves) <= len(set(a["group"]))  # balanced within every stratum, so overall too
    bad = runner.invoke(app, ["design", str(tmp_path / "d.csv"), "--db", str(db), "--strata", "nope"])
    assert bad.exit_code == 2 and "not a crm_user column" in bad.stderr


def test_attribution_table_by_every_model_held_to_the_lift(randomised, tmp_path: Path):
    import polars as pl

    study, db, _ = randomised
    result = runner.invoke(app, ["report", str(study), "--db", str(db), "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    at = doc["attribution"]
    incremental = float(doc["headline"]["incremental_revenue"])
    assert at["model"] == "linear" and at["calibration"]["incremental_revenue"] == pytest.approx(incremental)
    assert at["calibration"]["calibrated_program_value"] <= incremental + 0.01
    table = pl.read_csv(tmp_path / "attribution.csv")
    # Every won deal with touches is shared out exactly once: its shares sum to 1, its credit to its amount.
    per_deal = table.group_by("opportunity_id").agg(pl.col("share").sum(), pl.col("credited_value").sum(),
                                                    pl.col("value").first())
    assert per_deal["share"].to_list() == pytest.approx([1.0] * per_deal.height, abs=1e-5)
    assert per_deal["credited_value"].to_list() == pytest.approx(per_deal["value"].to_list(), rel=1e-6)
    channels = {r["channel"]: r for r in at["by_channel"]}
    program = channels["training: Sales Excellence"]
    assert program["credited_value"] == pytest.approx(at["calibration"]["raw_program_value"], abs=0.01)
    assert {r["channel"] for r in at["comparison"]} == set(channels)
    assert all(r["markov_rank"] >= 1 for r in at["comparison"])
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Attribution: which touches the won revenue flows through" in html
    # The command alone, another model, Parquet.
    alone = runner.invoke(app, ["attribute", str(study), "--db", str(db), "--out", str(tmp_path / "m"),
                                "--model", "markov", "--format", "parquet", "--json"])
    assert alone.exit_code == 0, alone.stderr
    markov = json.loads(alone.stdout)
    assert markov["model"] == "markov"
    parquet = pl.read_parquet(tmp_path / "m" / "attribution.parquet")
    assert parquet.height == markov["counts"]["attributed_touches"] and set(parquet["model"]) == {"markov_order_1"}
    assert markov["comparison"] == at["comparison"]  # every model in both; only the table's model differs
    bad = runner.invoke(app, ["attribute", str(study), "--db", str(db), "--model", "magic"])
    assert bad.exit_code == 2 and "expected one of first_touch" in bad.stderr


def test_phillips_levels_trace_to_their_rows_and_level_5_adds_declared_benefits(randomised, tmp_path: Path):
    from training_roi.evaluation import evaluate

    study_file, db, _ = randomised
    study = load_study(study_file).model_validate({
        **load_study(study_file).model_dump(mode="json"),
        "monetisation": [{"name": "errors avoided", "rule": "error_cost", "errors_avoided": 120,
                          "cost_per_error": 250}],
        "intangibles": ["better customer conversations"],
    })
    con = connect(db)
    ev = evaluate(con, study)
    surveys = con.table("survey_response")
    reaction_rows = surveys.filter((surveys.program == "Sales Excellence") & (surveys.level == "reaction")).count()
    expected_rows = int(reaction_rows.execute())
    con.disconnect()
    ph = ev.phillips
    assert ph is not None and ph.reaction.source_rows == expected_rows > 0
    assert ph.reaction.n == sum(q.n for q in ph.reaction.questions)
    revenue, errors = ph.roi.benefits
    assert revenue.amount == (ev.primary.incremental_revenue.quantize(Decimal("0.01"))
                              * Decimal(str(study.value.gross_margin))).quantize(Decimal("0.01"))
    assert errors.amount == Decimal(120 * 250) and errors.source == "assumption"
    f = ph.roi.figures
    assert f.benefit == revenue.amount + errors.amount and f.cost == ev.costs.total
    assert f.roi_pct.quantize(Decimal("0.01")) == ((f.benefit - f.cost) / f.cost * 100).quantize(Decimal("0.01"))
    assert ph.roi.intangibles == ("better customer conversations",)
    assert [e.name for e in ph.impact.effects] == [k.label for k in ev.primary.kpis]
    doc = ev.asdict()["phillips"]
    assert doc["roi"]["figures"]["benefit"] == str(f.benefit)


def test_kpis_command_gives_the_catalogue_monthly_and_says_what_is_unavailable(randomised, tmp_path: Path):
    import polars as pl

    _, db, _ = randomised
    total = runner.invoke(app, ["kpis", "--db", str(db), "--kpi", "win_rate", "--kpi", "customer_lifetime_value",
                                "--total", "--json"])
    assert total.exit_code == 0, total.stderr
    rows = {r["kpi"]: r for r in json.loads(total.stdout)}
    con = connect(db)
    won, closed = con.raw_sql("SELECT count(*) FILTER (WHERE is_won), count(*) FROM crm_opportunity "
                              "WHERE is_closed AND NOT is_deleted AND owner_id IS NOT NULL").fetchone()
    con.disconnect()
    assert rows["win_rate"]["value"] == pytest.approx(won / closed)
    assert rows["customer_lifetime_value"]["value"] is None
    assert "gross margin" in rows["customer_lifetime_value"]["reason"]
    monthly = runner.invoke(app, ["kpis", "--db", str(db), "--kpi", "win_rate", "--csv", str(tmp_path / "k.csv")],
                            env={"COLUMNS": "200"})
    assert monthly.exit_code == 0, monthly.stderr
    assert "win rate" in monthly.stdout and "over a year" in monthly.stdout
    frame = pl.read_csv(tmp_path / "k.csv")
    # Months pool to the whole: Σ numerators / Σ denominators over the months is the total rate.
    assert frame["numerator"].sum() / frame["denominator"].sum() == pytest.approx(won / closed)
    assert {"mom", "yoy"} <= set(frame.columns)
    bad = runner.invoke(app, ["kpis", "--db", str(db), "--kpi", "happiness"])
    assert bad.exit_code == 2 and "not in the catalogue" in bad.stderr
