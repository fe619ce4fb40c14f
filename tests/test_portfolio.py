"""The portfolio: several programs' evaluations side by side, on simulated orgs with known truth.

Two orgs (a randomised program with an effect, and a program without one) give three evaluations:
the randomised program at two costs, and the null program. Every figure of a row is derived
again from the evaluation (and from the data files) here, independently of the portfolio code.
"""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import polars as pl
import pytest
from rich.console import Console

from training_roi._format import money, percent
from training_roi.evaluation import evaluate
from training_roi.evaluation.portfolio import (
    LOW_REACTION,
    WEAK_APPLICATION,
    WEAK_PASS_RATE,
    Signals,
    portfolio,
    recommend,
)
from training_roi.evaluation.results import Evaluation
from training_roi.ingest.folder import ingest_folder
from training_roi.linking import link
from training_roi.present.portfolio import portfolio_table, render_portfolio_html, write_portfolio
from training_roi.simulate import simulate
from training_roi.study import Study
from training_roi.warehouse.connection import connect

# --- the rules, on plain values ------------------------------------------------------------------


def _signals(**changes: object) -> Signals:
    """An established program with a clearly positive ROI and healthy levels; ``changes`` override."""
    base = Signals(established=True, roi_interval=(40.0, 260.0), impact_positive=True, power_warning=None,
                   powered=True, reaction_mean=4.2, pass_rate=0.9, application_mean=3.8, why="credited")
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize(("changes", "action", "rule"), [
    ({}, "keep", 2),
    # Weak learning does not overturn a clearly positive return: keep, with the weakness named.
    ({"pass_rate": 0.5}, "keep", 2),
    # An established effect whose whole ROI interval is below zero costs more than it returns.
    ({"roi_interval": (-90.0, -10.0)}, "cut", 1),
    ({"roi_interval": (-160.0, -120.0), "impact_positive": False}, "cut", 1),
    # Positive impact, uncertain return, weak learning or application: improve.
    ({"roi_interval": (-30.0, 200.0), "pass_rate": 0.6}, "improve", 3),
    ({"roi_interval": (-30.0, 200.0), "application_mean": 2.5}, "improve", 3),
    # The interval touching zero is not "above zero".
    ({"roi_interval": (0.0, 200.0), "pass_rate": 0.6}, "improve", 3),
    ({"roi_interval": (0.0, 200.0)}, "evidence needed", 5),
    # Thresholds are strict: exactly 70% pass rate and 3.0 of 5 are not weak.
    ({"roi_interval": (-30.0, 200.0), "pass_rate": WEAK_PASS_RATE, "application_mean": WEAK_APPLICATION},
     "evidence needed", 5),
    ({"roi_interval": None, "pass_rate": 0.6}, "improve", 3),
    ({"roi_interval": None}, "evidence needed", 5),
    # Nothing established, enough power, low reaction: cut.
    ({"established": False, "roi_interval": None, "impact_positive": False, "reaction_mean": 2.4}, "cut", 4),
    # ... but not when the study could not have seen an effect, nor when learners like it.
    ({"established": False, "roi_interval": None, "impact_positive": False, "reaction_mean": 2.4,
      "powered": False, "power_warning": "the study is under-powered"}, "evidence needed", 5),
    ({"established": False, "roi_interval": None, "impact_positive": False, "reaction_mean": LOW_REACTION},
     "evidence needed", 5),
    ({"established": False, "roi_interval": None, "impact_positive": False, "reaction_mean": None},
     "evidence needed", 5),
    # Weak learning without an established effect is not "improve": there is no impact to protect.
    ({"established": False, "roi_interval": None, "impact_positive": False, "pass_rate": 0.3},
     "evidence needed", 5),
])
def test_recommendation_rules(changes: dict[str, object], action: str, rule: int):
    r = recommend(_signals(**changes))
    assert (r.action, r.rule) == (action, rule)


def test_reasons_name_the_figures_that_decided():
    kept = recommend(_signals(pass_rate=0.5))
    assert "40.0% to 260.0%" in kept.reason and "pass rate 50.0% is under 70.0%" in kept.reason
    cut = recommend(_signals(roi_interval=(-90.0, -10.5)))
    assert "−90.0% to −10.5%" in cut.reason and "below zero" in cut.reason
    low = recommend(_signals(established=False, roi_interval=None, impact_positive=False, reaction_mean=2.4))
    assert "2.40 of 5" in low.reason
    warned = recommend(_signals(established=False, roi_interval=None, powered=False,
                                power_warning="the smallest lift this study can detect is +3.8 pts"))
    assert warned.reason == "the smallest lift this study can detect is +3.8 pts"
    unknown = recommend(_signals(established=False, roi_interval=None, powered=False, why="no comparison group"))
    assert unknown.reason == "the effect is not established (no comparison group); the study's power is unknown"


def test_an_empty_portfolio_is_refused():
    with pytest.raises(ValueError, match="at least one evaluated study"):
        portfolio([])


# --- three evaluations on two simulated orgs -----------------------------------------------------


def _org(tmp_path_factory: pytest.TempPathFactory, scenario: str, seed: int) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp(scenario)
    simulate(root / "data", reps=300, months=24, seed=seed, scenario=scenario)
    con = connect(root / "roi.duckdb")
    ingest_folder(root / "data", con)
    link(con)
    con.disconnect()
    return root, json.loads((root / "data" / "truth.json").read_text())


def _evaluate(root: Path, truth: dict, name: str, seed: int, participant_time: dict) -> Evaluation:
    study = Study.model_validate({
        "name": name,
        "program": {"name": truth["program"]["name"], "activities": [truth["program"]["course_activity_id"]]},
        "costs": {"participant_time": participant_time},
        "isolation": {"bootstrap_replicates": 400, "seed": seed},
    })
    con = connect(root / "roi.duckdb")
    try:
        return evaluate(con, study)
    finally:
        con.disconnect()


RESIDENTIAL = "Sales Excellence, two-week residential"


@pytest.fixture(scope="module")
def orgs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict]]:
    # Seed 2: the randomised program's effect is established with 300 reps (seed 32: no effect).
    return {"randomised": _org(tmp_path_factory, "randomised", 2), "null": _org(tmp_path_factory, "null", 32)}


@pytest.fixture(scope="module")
def evaluations(orgs: dict[str, tuple[Path, dict]]) -> dict[str, Evaluation]:
    root, truth = orgs["randomised"]
    null_root, null_truth = orgs["null"]
    evs = {
        "Sales Excellence": _evaluate(root, truth, "Sales Excellence", 2, {"hourly_rate": 60}),
        # The same program and effect, each learner costed two weeks away from selling: a lower return.
        RESIDENTIAL: _evaluate(root, truth, RESIDENTIAL, 2, {"hourly_rate": 150, "minutes_per_learner": 4800}),
        "Negotiation Lab": _evaluate(null_root, null_truth, "Negotiation Lab", 32, {"hourly_rate": 60}),
    }
    assert null_truth["truth"]["windows"]["180"]["att_win_rate"] == 0
    return evs


def _ratio(a: Decimal, b: Decimal) -> Fraction:
    return Fraction(a) / Fraction(b)


def _close(value: Decimal | None, exact: Fraction) -> bool:
    """``value`` equals ``exact`` to 25 significant digits (the code divides once at 34)."""
    return value is not None and abs(Fraction(value) - exact) <= abs(exact) * Fraction(1, 10**25)


@pytest.mark.slow
def test_rows_carry_each_evaluation_s_own_figures(evaluations: dict[str, Evaluation]):
    p = portfolio(list(evaluations.values()))
    assert {r.name for r in p.rows} == set(evaluations)
    for r in p.rows:
        ev = evaluations[r.name]
        ph = ev.phillips
        assert ph is not None
        assert r.study_hash == ev.study.hash
        assert r.cost == ev.costs.total
        # Level 5's benefit: every monetised benefit (here only the credited revenue × margin 1.0).
        assert r.benefit == sum(b.amount for b in ph.roi.benefits)
        assert r.benefit == (ev.primary.incremental_revenue.quantize(Decimal("0.01"))
                             * Decimal(str(ev.study.value.gross_margin))).quantize(Decimal("0.01"))
        assert r.net_benefit == r.benefit - r.cost
        assert _close(r.roi_pct, (Fraction(r.benefit) - Fraction(r.cost)) / Fraction(r.cost) * 100)
        assert _close(r.benefit_cost_ratio, _ratio(r.benefit, r.cost))
        months = Fraction(ph.roi.figures.months_of_benefit)
        if r.benefit > 0:
            assert _close(r.payback_months, Fraction(r.cost) * months / Fraction(r.benefit))
        else:
            assert r.payback_months is None
        assert r.established is ev.primary.credit.is_credited
        if r.established:
            # The ROI interval is the credited definition's revenue interval valued:
            # (revenue × margin − cost) / cost.
            chosen = ev.primary.revenue[ev.primary.revenue_definition]
            assert chosen.interval is not None
            assert ev.primary.intervals["incremental_revenue"] == chosen.interval
            cost = float(ev.costs.total)
            expected = tuple((x * ev.study.value.gross_margin - cost) / cost * 100 for x in chosen.interval)
            assert r.roi_interval == pytest.approx(expected, rel=1e-9)
            assert r.benefit > 0
        else:
            assert r.roi_interval is None
            assert r.benefit == 0 and r.roi_pct == -100


@pytest.mark.slow
def test_totals_add_up_exactly(evaluations: dict[str, Evaluation]):
    p = portfolio(list(evaluations.values()))
    t = p.totals
    cost = sum((ev.costs.total for ev in evaluations.values()), Decimal(0))
    benefit = sum((sum(b.amount for b in ev.phillips.roi.benefits) for ev in evaluations.values()), Decimal(0))
    assert t.cost == cost and t.benefit == benefit
    assert t.net_benefit == benefit - cost
    assert _close(t.roi_pct, (Fraction(benefit) - Fraction(cost)) / Fraction(cost) * 100)
    assert _close(t.benefit_cost_ratio, _ratio(benefit, cost))
    assert t.programs == 3 and t.established == sum(ev.established for ev in evaluations.values())
    assert sum(t.by_action.values()) == 3
    assert t.by_action == {a: sum(r.recommendation.action == a for r in p.rows) for a in t.by_action}


@pytest.mark.slow
def test_recommendations_follow_the_truth(evaluations: dict[str, Evaluation]):
    rows = {r.name: r for r in portfolio(list(evaluations.values())).rows}
    null = rows["Negotiation Lab"]
    assert not null.established
    assert null.recommendation.action != "keep"
    # Under-powered (its estimate is below the minimum detectable lift): the study cannot tell.
    assert evaluations["Negotiation Lab"].primary.power_warning is not None
    assert null.recommendation.action == "evidence needed"
    assert null.recommendation.reason == evaluations["Negotiation Lab"].primary.power_warning
    good = rows["Sales Excellence"]
    assert good.established and good.roi_interval is not None and good.roi_interval[0] > 0
    assert good.recommendation.action == "keep"
    # Several times the cost: the same established effect, a return the interval no longer clears.
    dear = rows[RESIDENTIAL]
    assert dear.established and dear.cost > 5 * good.cost
    assert dear.roi_interval is not None and dear.roi_interval[0] < 0 < dear.roi_interval[1]
    assert dear.recommendation.action == "evidence needed" and "includes zero" in dear.recommendation.reason
    assert dear.roi_pct < good.roi_pct


def _survey_answers(data: Path, program: str, level: str) -> tuple[int, int]:
    """(answers on the 1–5 scale, respondents) of ``level`` for ``program``, read from surveys.csv."""
    s = pl.read_csv(data / "surveys.csv", infer_schema_length=None).filter(
        (pl.col("program") == program) & (pl.col("level") == level))
    on_scale = s.filter(pl.col("score").cast(pl.Float64, strict=False).is_in([1.0, 2.0, 3.0, 4.0, 5.0]))
    return on_scale.height, s["respondent_email"].str.to_lowercase().drop_nulls().n_unique()


@pytest.mark.slow
def test_levels_reached_match_the_counts(evaluations: dict[str, Evaluation], orgs: dict[str, tuple[Path, dict]]):
    p = portfolio(list(evaluations.values()))
    for r in p.rows:
        ev = evaluations[r.name]
        ph = ev.phillips
        levels = {lv.level: lv for lv in r.levels}
        assert [lv.level for lv in r.levels] == [1, 2, 3, 4, 5]
        data = orgs["null" if r.name == "Negotiation Lab" else "randomised"][0] / "data"
        answers, respondents = _survey_answers(data, ev.study.program.name, "reaction")
        assert levels[1].counts == {"answers": answers, "respondents": respondents}
        assert levels[1].reached is (answers > 0)
        assert levels[2].counts == {"scores": ph.learning.scores_n, "passed": ph.learning.passed,
                                    "failed": ph.learning.failed}
        assert levels[2].reached is (ph.learning.scores_n + ph.learning.passed + ph.learning.failed > 0)
        applied, _ = _survey_answers(data, ev.study.program.name, "application")
        pairs = sum(c.n for c in ph.application.behaviour)
        assert levels[3].counts["answers"] == applied and levels[3].counts["behaviour_pairs"] == pairs
        assert levels[3].reached is (applied + pairs > 0)
        # Every KPI of the study has a difference-in-differences here: level 4 counts them all.
        assert levels[4].counts["effects"] == sum(k.did is not None for k in ev.primary.kpis) > 0
        assert levels[4].counts["improved"] == sum(k.verdict == "improved" for k in ev.primary.kpis)
        assert levels[5].reached and levels[5].counts["benefits"] == 1
        # The simulated program has every kind of data, so all five levels are reached.
        assert r.levels_reached == (1, 2, 3, 4, 5)


@pytest.mark.slow
def test_order_is_established_first_then_roi_and_does_not_depend_on_input_order(
        evaluations: dict[str, Evaluation]):
    evs = list(evaluations.values())
    p = portfolio(evs)
    assert [r.rank for r in p.rows] == [1, 2, 3]
    established = [r for r in p.rows if r.established]
    assert [r.established for r in p.rows] == [True] * len(established) + [False] * (3 - len(established))
    for group in (established, [r for r in p.rows if not r.established]):
        assert [r.roi_pct for r in group] == sorted((r.roi_pct for r in group), reverse=True)
    assert [r.name for r in p.rows] == ["Sales Excellence", RESIDENTIAL, "Negotiation Lab"]
    again = portfolio(evs[::-1])
    assert again == p
    # The document: JSON-ready, money as exact decimal strings, same bytes whatever the input order.
    doc = json.dumps(p.asdict(), sort_keys=True, allow_nan=False)
    assert doc == json.dumps(again.asdict(), sort_keys=True, allow_nan=False)
    parsed = json.loads(doc)
    assert [row["name"] for row in parsed["programs"]] == [r.name for r in p.rows]
    assert Decimal(parsed["totals"]["cost"]) == p.totals.cost
    assert [Decimal(row["benefit"]) for row in parsed["programs"]] == [r.benefit for r in p.rows]
    assert parsed["programs"][0]["roi_pct"] == str(p.rows[0].roi_pct)


@pytest.mark.slow
def test_the_same_study_twice_or_two_currencies_are_refused(evaluations: dict[str, Evaluation]):
    ev = evaluations["Sales Excellence"]
    with pytest.raises(ValueError, match=r"'Sales Excellence'.*given twice"):
        portfolio([ev, ev])
    euro = dataclasses.replace(ev, study=ev.study.model_copy(update={"currency": "EUR", "name": "Euro"}))
    with pytest.raises(ValueError, match="different currencies"):
        portfolio([ev, euro])


@pytest.mark.slow
def test_html_and_console_show_every_program_and_the_totals(evaluations: dict[str, Evaluation], tmp_path: Path):
    p = portfolio(list(evaluations.values()))
    html = render_portfolio_html(p)
    doc, page = write_portfolio(p, tmp_path / "out")
    assert page.read_text(encoding="utf-8") == html
    assert json.loads(doc.read_text(encoding="utf-8")) == json.loads(json.dumps(p.asdict()))
    again, _ = write_portfolio(portfolio(list(evaluations.values())[::-1]), tmp_path / "again")
    assert again.read_bytes() == doc.read_bytes()
    for r in p.rows:
        assert r.name in html
        assert r.recommendation.reason.replace("'", "&#39;") in html
    assert money(p.totals.cost) in html and money(p.totals.benefit) in html
    assert percent(p.totals.roi_pct) in html
    assert "<script" not in html and "<link" not in html and 'src="http' not in html
    assert html.count("<tr>") >= 4 * len(p.rows)
    console = Console(record=True, width=250)
    console.print(portfolio_table(p))
    text = console.export_text()
    for r in p.rows:
        assert r.name in text and money(r.cost) in text
    assert money(p.totals.cost) in text and percent(p.totals.roi_pct) in text
