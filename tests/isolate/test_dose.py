"""Dose-response for micro-lessons: hand-worked panels, known simulated slopes, statsmodels' WLS, the caveats."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm

from tests.builders import COURSE, mbox, statement, write
from training_roi.ingest.folder import ingest_folder
from training_roi.isolate.dose import (
    SELF_SELECTION,
    UNDATED,
    dose_changes,
    estimate_dose_response,
)
from training_roi.isolate.effect import NotApplicable
from training_roi.linking import link
from training_roi.measure import lesson_counts, lesson_dates
from training_roi.measure.panels import UnitPanel

R1, R2, R3, R4 = (f"00500000000000{i}AAA" for i in range(1, 5))
LESSON1, LESSON2, LESSON3 = (f"{COURSE}/lesson/0{i}" for i in range(1, 4))


def _hand_panel() -> UnitPanel:
    months = [date(2024, m, 1) for m in (1, 2, 3, 4)]
    rows = {  # unit: (treated_at, [(won, closed) by month])
        "a": (date(2024, 2, 10), [(1, 4), (2, 3), (1, 1), (0, 5)]),
        "b": (None, [(2, 2), (0, 1), (1, 3), (0, 0)]),
        "c": (None, [(1, 2), (1, 2), (0, 0), (3, 3)]),
        "d": (None, [(0, 0), (1, 1), (1, 1), (0, 0)]),
    }
    frame = pl.DataFrame([
        {"unit": u, "period": m, "treated_at": t, "won": float(w), "closed": float(c)}
        for u, (t, counts) in rows.items() for m, (w, c) in zip(months, counts, strict=True)
    ], schema={"unit": pl.String, "period": pl.Date, "treated_at": pl.Date, "won": pl.Float64, "closed": pl.Float64})
    return UnitPanel(frame=frame, outcome="win_rate", numerator="won", denominator="closed")


def test_changes_and_slope_on_a_panel_worked_by_hand():
    # a: 1 lesson, anchored at its training date (February); b: 3 lessons, first on February 20th
    # (given in the doses); c and d: none, so both get February (the only learners' month).
    doses = pl.DataFrame({"unit": ["a", "b", "zz"], "lessons": [1, 3, 2],
                          "first_lesson": [None, date(2024, 2, 20), date(2024, 1, 1)]})
    changes = dose_changes(_hand_panel(), doses=doses, pre_months=1, post_months=2)
    # Before: January; after: February and March (April is past the window).
    # a: 1/4 → (2+1)/(3+1) = 3/4, change +0.5, weight 1/(1/4 + 1/4) = 2.
    # b: 2/2 → (0+1)/(1+3) = 1/4, change −0.75, weight 1/(1/2 + 1/4) = 4/3.
    # c: 1/2 → 1/2, change 0, weight 1. d closed nothing in January: left out. zz is not in the panel.
    assert changes["unit"].to_list() == ["a", "b", "c"]
    assert changes["anchor"].to_list() == [date(2024, 2, 1)] * 3
    assert changes["pseudo_anchor"].to_list() == [False, False, True]
    assert changes["change"].to_list() == pytest.approx([0.5, -0.75, 0.0])
    assert changes["weight"].to_list() == pytest.approx([2.0, 4 / 3, 1.0])
    # Undated counts: every lesson counts for every deal after the anchor.
    assert changes["dose"].to_list() == [1.0, 3.0, 0.0] and changes["pre_dose"].to_list() == [0.0] * 3
    # Weighted line through (1, 0.5) w=2, (3, −0.75) w=4/3, (0, 0) w=1: x̄ = 18/13, ȳ = 0,
    # Sxx = 74/13, Sxy = −2, slope = −13/37, intercept = 18/37.
    effect = estimate_dose_response(_hand_panel(), doses=doses, pre_months=1, post_months=2, replicates=50)
    assert effect.estimate == pytest.approx(-13 / 37)
    assert effect.details["intercept"] == pytest.approx(18 / 37)
    assert effect.baseline == pytest.approx((1 + 2) / (4 + 2))  # the learners' January, pooled
    assert effect.diagnostics["units_left_out"] == 1
    assert UNDATED in effect.warnings and effect.details["dated"] == 0.0
    bins = {b["label"]: b for b in effect.diagnostics["bins"]}
    assert set(bins) == {"0", "1", "3"} and bins["3"]["mean_change"] == pytest.approx(-0.75)
    assert bins["1"]["fitted_change"] == pytest.approx(18 / 37 - 13 / 37)
    json.dumps(effect.asdict())  # diagnostics and details are JSON-ready
    # Without a denominator the outcome is per unit-month: a won 1 in January, 3 over February
    # and March (1.5 a month), change +0.5, weight 1/(1/1 + 1/2) = 2/3.
    per_month = UnitPanel(frame=_hand_panel().frame, outcome="won_per_month", numerator="won")
    changes = dose_changes(per_month, doses=doses, pre_months=1, post_months=2)
    assert changes["unit"].to_list() == ["a", "b", "c", "d"]  # every unit has months now
    assert changes.row(0, named=True)["change"] == pytest.approx(0.5)
    assert changes.row(0, named=True)["weight"] == pytest.approx(2 / 3)


def test_dated_lessons_count_only_for_the_deals_after_them_worked_by_hand():
    # a's lessons: February 10th (2024 is a leap year: 19 of February's 29 days come after it),
    # March 5th (26 of 31 days after it), and a repeat of the first lesson in March, which counts
    # from its first date. April's lesson is after the window. b: two lessons on March 31st
    # (no day of March after them). c and d: none.
    doses = pl.DataFrame({
        "unit": ["a", "a", "a", "a", "b", "b"],
        "lesson": ["l1", "l2", "l1", "l3", "l1", "l2"],
        "completed_on": [date(2024, 2, 10), date(2024, 3, 5), date(2024, 3, 20), date(2024, 4, 20),
                         date(2024, 3, 31), date(2024, 3, 31)],
    })
    changes = dose_changes(_hand_panel(), doses=doses, pre_months=1, post_months=2)
    # Anchors: a February, b March (its first lesson); c and d draw one of them.
    rows = {r["unit"]: r for r in changes.iter_rows(named=True)}
    assert rows["a"]["lessons"] == 3 and rows["b"]["lessons"] == 2
    # a closed 3 deals in February (dose 19/29) and 1 in March (1 + 26/31).
    assert rows["a"]["post_dose"] == pytest.approx((3 * 19 / 29 + 1 * (1 + 26 / 31)) / 4)
    assert rows["a"]["pre_dose"] == 0.0 and rows["a"]["dose"] == rows["a"]["post_dose"]
    # b: March (3 deals, dose 0: nothing after March 31st) and April (0 deals): dose 0; before: February.
    assert rows["b"]["anchor"] == date(2024, 3, 1)
    assert rows["b"]["pre"] == 0.0 and rows["b"]["post"] == pytest.approx(1 / 3) and rows["b"]["dose"] == 0.0
    # The slope is statsmodels' weighted least squares of the changes on those doses.
    effect = estimate_dose_response(_hand_panel(), doses=doses, pre_months=1, post_months=2, replicates=50)
    fit = sm.WLS(changes["change"].to_numpy(), sm.add_constant(changes["dose"].to_numpy()),
                 weights=changes["weight"].to_numpy()).fit()
    assert effect.estimate == pytest.approx(fit.params[1], rel=1e-9)
    assert effect.details["dated"] == 1.0 and UNDATED not in effect.warnings
    assert "before its deals" in effect.assumptions[1]
    with pytest.raises(ValueError, match="without a completed_on date"):
        dose_changes(_hand_panel(), doses=pl.DataFrame({"unit": ["a"], "completed_on": [None]},
                                                       schema={"unit": pl.String, "completed_on": pl.Date}))


def _drills(n: int, per_lesson: float, seed: int) -> tuple[UnitPanel, pl.DataFrame]:
    """Reps' deals over 24 months; a deal's win chance rises by ``per_lesson`` per lesson done before its day.

    Learners do 1 to 20 lessons on random days over the 150 days from their first, so many
    lessons come after many of the deals of the six months from the first: crediting them to
    those deals (total counts) dilutes the slope. Deals fall on random days; the org drifts up
    0.3 points a month and every rep has its own level. Returns the panel and one row per lesson.
    """
    rng = np.random.default_rng(seed)
    start = np.datetime64("2023-01-01")
    month_starts = np.array([np.datetime64(f"{2023 + m // 12}-{m % 12 + 1:02d}-01") for m in range(25)])
    days_in = np.diff(month_starts).astype(int)
    lessons = np.where(rng.random(n) < 0.35, 0, rng.integers(1, 21, n))
    first = rng.integers(180, 540, n)
    level = np.clip(rng.normal(0.3, 0.06, n), 0.05, 0.7)
    won = np.zeros((n, 24))
    closed = rng.poisson(5, (n, 24))
    lesson_rows: list[tuple[str, np.datetime64]] = []
    for i in range(n):
        days = np.sort(np.concatenate([[first[i]], first[i] + rng.integers(1, 151, lessons[i] - 1)])
                       ) if lessons[i] else np.zeros(0, dtype=np.int64)
        lesson_rows += [(f"r{i:04d}", start + np.timedelta64(int(d), "D")) for d in days]
        for m in range(24):
            offset = int((month_starts[m] - start).astype(int))
            deal_days = offset + rng.integers(0, days_in[m], closed[i, m])
            before = np.searchsorted(days, deal_days, side="left")  # lessons on earlier days
            p = np.clip(level[i] + 0.003 * m + per_lesson * before, 0, 1)
            won[i, m] = float((rng.random(closed[i, m]) < p).sum())
    periods = [month_starts[m].astype(object) for m in range(24)]
    frame = pl.DataFrame({
        "unit": np.repeat([f"r{i:04d}" for i in range(n)], 24), "period": periods * n,
        "treated_at": [None] * (24 * n), "won": won.ravel(), "closed": closed.ravel().astype(float),
    }, schema_overrides={"period": pl.Date, "treated_at": pl.Date})
    dated = pl.DataFrame({"unit": [u for u, _ in lesson_rows],
                          "completed_on": [d.astype(object) for _, d in lesson_rows]},
                         schema={"unit": pl.String, "completed_on": pl.Date})
    return UnitPanel(frame=frame, outcome="win_rate", numerator="won", denominator="closed"), dated


def test_dated_lessons_recover_the_effect_per_lesson_that_total_counts_understate():
    panel, dated = _drills(1500, 0.01, seed=7)
    effect = estimate_dose_response(panel, doses=dated, replicates=499, seed=1)
    assert effect.ci_low < 0.01 < effect.ci_high
    assert effect.estimate == pytest.approx(0.01, abs=0.002)
    # The same lessons as counts: each one credited to every deal of the window.
    counts = dated.group_by("unit").agg(lessons=pl.len(), first_lesson=pl.col("completed_on").min())
    undated = estimate_dose_response(panel, doses=counts, replicates=499, seed=1)
    assert undated.estimate < 0.75 * 0.01 and undated.ci_high < 0.01
    assert UNDATED in undated.warnings
    changes = dose_changes(panel, doses=dated)
    learners = changes.filter(pl.col("lessons") > 0)
    # Lessons behind a deal of the window are fewer than the lessons done in total.
    assert (learners["dose"] < learners["lessons"]).mean() > 0.9
    assert changes["dose"].to_list() == pytest.approx(changes["post_dose"].to_list())  # no lesson before the anchor


def _simulated(n: int, per_lesson: float, seed: int, *, selected: bool = False) -> tuple[UnitPanel, pl.DataFrame]:
    """Reps over 24 months; a learner's win rate moves by ``per_lesson`` × lessons from its first-lesson month.

    The whole org drifts up 0.3 points a month and every rep has its own level, so only a
    comparison of changes recovers the slope. With ``selected``, reps who take more lessons were
    also on their way up (a trend of their own): the self-selection the estimator warns about.
    """
    rng = np.random.default_rng(seed)
    months = 24
    lessons = np.where(rng.random(n) < 0.35, 0, rng.integers(1, 11, n))
    anchor = rng.integers(6, 18, n)
    level = np.clip(rng.normal(0.3, 0.06, n), 0.05, 0.8)
    t = np.arange(months)
    rate = level[:, None] + 0.003 * t[None, :]
    rate = rate + per_lesson * lessons[:, None] * (t[None, :] >= anchor[:, None])
    if selected:
        rate = rate + 0.005 * lessons[:, None] * (t[None, :] - anchor[:, None]).clip(-6, 6) / 6
    closed = rng.poisson(4, (n, months))
    won = rng.binomial(closed, np.clip(rate, 0, 1))
    periods = [date(2023 + m // 12, m % 12 + 1, 1) for m in range(months)]
    units = [f"r{i:04d}" for i in range(n)]
    first = [periods[a] if k else None for a, k in zip(anchor, lessons, strict=True)]
    frame = pl.DataFrame({
        "unit": np.repeat(units, months), "period": periods * n,
        "treated_at": [f for f in first for _ in range(months)],
        "won": won.ravel().astype(float), "closed": closed.ravel().astype(float),
    }, schema_overrides={"period": pl.Date, "treated_at": pl.Date})
    doses = pl.DataFrame({"unit": units, "lessons": lessons})
    return UnitPanel(frame=frame, outcome="win_rate", numerator="won", denominator="closed"), doses


def test_a_known_slope_is_recovered_and_equals_statsmodels_wls():
    panel, doses = _simulated(300, 0.01, seed=1)
    effect = estimate_dose_response(panel, doses=doses, replicates=499, seed=3)
    assert effect.method == "dose-response (per lesson)"
    assert effect.ci_low < 0.01 < effect.ci_high
    assert effect.estimate == pytest.approx(0.01, abs=0.004)
    assert effect.ci_low > 0  # a point per lesson is visible with 300 reps
    # The org-wide drift (0.3 pts a month, six months apart) is the change at zero lessons.
    assert effect.details["intercept"] == pytest.approx(0.018, abs=0.012)
    # The same unit-level changes through statsmodels' weighted least squares.
    changes = dose_changes(panel, doses=doses, seed=3)
    fit = sm.WLS(changes["change"].to_numpy(), sm.add_constant(changes["lessons"].to_numpy()),
                 weights=changes["weight"].to_numpy()).fit()
    assert effect.estimate == pytest.approx(fit.params[1], rel=1e-9)
    assert effect.details["intercept"] == pytest.approx(fit.params[0], rel=1e-9)
    # The bootstrap's spread is near the regression's heteroskedasticity-robust standard error.
    robust = sm.WLS(changes["change"].to_numpy(), sm.add_constant(changes["lessons"].to_numpy()),
                    weights=changes["weight"].to_numpy()).fit(cov_type="HC1")
    assert effect.std_error == pytest.approx(robust.bse[1], rel=0.25)
    # Ten lessons bins: zero, then five bands of learners, with every unit counted once.
    bins = effect.diagnostics["bins"]
    assert bins[0]["label"] == "0" and sum(b["units"] for b in bins) == changes.height
    assert [b["mean_lessons"] for b in bins] == sorted(b["mean_lessons"] for b in bins)
    assert effect.replicates == 499


def test_no_dose_effect_gives_an_interval_around_zero():
    panel, doses = _simulated(500, 0.0, seed=2)
    effect = estimate_dose_response(panel, doses=doses, replicates=499, seed=4)
    assert effect.interval_includes_zero
    assert abs(effect.estimate) < 0.004


def test_self_selection_is_said_and_shows_when_learners_were_on_their_way_up():
    panel, doses = _simulated(300, 0.0, seed=5, selected=True)
    effect = estimate_dose_response(panel, doses=doses, replicates=199)
    assert SELF_SELECTION in effect.warnings and SELF_SELECTION in effect.assumptions
    assert "self-selected" in SELF_SELECTION and "association" in SELF_SELECTION
    # No lesson did anything here, yet the slope is clearly positive: what the warning is for.
    assert effect.estimate > 0.003 and effect.ci_low > 0


def test_refusals_name_the_problem():
    panel = _hand_panel()
    with pytest.raises(NotApplicable, match="no unit of the panel completed a lesson"):
        estimate_dose_response(panel, doses=pl.DataFrame({"unit": ["a"], "lessons": [0]}))
    with pytest.raises(NotApplicable, match="same dose"):
        estimate_dose_response(panel, doses=pl.DataFrame({"unit": ["a", "b", "c"], "lessons": [2, 2, 2],
                                                          "first_lesson": [date(2024, 2, 1)] * 3}),
                               pre_months=1, post_months=2)
    with pytest.raises(ValueError, match="no date of a first lesson"):
        dose_changes(panel, doses=pl.DataFrame({"unit": ["b"], "lessons": [2]}))
    with pytest.raises(ValueError, match="no column lessons"):
        dose_changes(panel, doses=pl.DataFrame({"unit": ["a"]}))
    with pytest.raises(ValueError, match="more than once"):
        dose_changes(panel, doses=pl.DataFrame({"unit": ["a", "a"], "lessons": [1, 2]}))


def test_lesson_counts_from_the_warehouse(tmp_path: Path, con):
    in_course = {"contextActivities": {"parent": [{"id": COURSE}]}}

    def lesson(n: int, who: str, which: str, when: str, verb: str = "completed") -> dict:
        return statement(n, mbox(who), verb=verb, object={"id": which}, context=in_course, timestamp=when)

    lines = [
        # Rep 1: lessons 1 and 2 (2 twice), then the course itself; lesson 3 only attempted.
        lesson(1, "a@x.com", LESSON1, "2025-03-04T10:00:00Z"),
        lesson(2, "a@x.com", LESSON2, "2025-03-10T10:00:00Z"),
        lesson(3, "a@x.com", LESSON2, "2025-03-12T10:00:00Z"),
        statement(4, mbox("a@x.com"), timestamp="2025-04-01T10:00:00Z"),
        lesson(5, "a@x.com", LESSON3, "2025-04-02T10:00:00Z", verb="attempted"),
        # Rep 2: lesson 1, late in the evening of March 5th in New York (the 6th in UTC).
        lesson(6, "b@x.com", LESSON1, "2025-03-05T22:00:00-05:00"),
        # Rep 3 finished the course without any lesson record; an unknown learner did lesson 1.
        statement(7, mbox("c@x.com"), timestamp="2025-04-01T10:00:00Z"),
        lesson(8, "nobody@x.com", LESSON1, "2025-03-04T10:00:00Z"),
    ]
    write(tmp_path / "crm" / "User.csv", f"Id,Email\n{R1},a@x.com\n{R2},b@x.com\n{R3},c@x.com\n{R4},d@x.com\n")
    write(tmp_path / "lms" / "statements.jsonl", "\n".join(json.dumps(s) for s in lines) + "\n")
    ingest_folder(tmp_path, con)
    link(con)
    counts = lesson_counts(con, [COURSE])
    assert counts.columns == ["unit", "lessons", "first_lesson"]
    assert counts.rows() == [(R1, 2, date(2025, 3, 4)), (R2, 1, date(2025, 3, 6))]
    # Naming the lessons themselves counts just those.
    assert lesson_counts(con, [LESSON2, LESSON3]).rows() == [(R1, 1, date(2025, 3, 10))]
    # An activity nobody completed gives no rows.
    assert lesson_counts(con, ["https://lms.example.com/course/other"]).is_empty()
    # The same lessons with their dates: lesson 2 counts from its first completion (the 10th).
    dates = lesson_dates(con, [COURSE])
    assert dates.columns == ["unit", "lesson", "completed_on"]
    assert dates.rows() == [(R1, LESSON1, date(2025, 3, 4)), (R1, LESSON2, date(2025, 3, 10)),
                            (R2, LESSON1, date(2025, 3, 6))]
    per_unit = dates.group_by("unit").agg(pl.len().alias("lessons"), pl.col("completed_on").min()).sort("unit")
    assert per_unit.rows() == counts.rows()
