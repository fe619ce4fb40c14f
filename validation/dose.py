"""Validation: the dose-response estimator against the exact per-lesson truth of simulated micro-lessons.

For each seed, simulate an org in scenario ``microlessons`` (daily drills, self-selected doses,
a known effect per lesson on the log-odds of winning), ingest and link it, read each rep's
lessons from the warehouse, build the monthly win-rate panel and run ``estimate_dose_response``
twice: with dated lessons (``lesson_dates``: a deal is credited only with the lessons done before
it, the estimator's design) and with undated counts (``lesson_counts``: every lesson credited to
every deal of the window, the design it replaced). Their slopes are scored against the two
truths the simulator computes from potential outcomes (see ``training_roi.simulate`` and
truth.json's ``definitions``):

* ``ame_per_lesson`` — the estimand: the average marginal effect of one lesson on the win rate
  of the learners' deals in the 180 days after their first lesson, at the lessons done by then;
* ``change_per_lesson_completed`` — their expected change in win rate over those deals per
  lesson completed in total: what a regression of before/after changes on total lesson counts
  recovers when lessons are not self-selected (lessons done after a deal cannot help it).

A naive slope is shown beside them: the learners' and non-learners' win rate *after* the anchor
regressed on lessons (weighted by closed deals, heteroskedasticity-robust interval), with no
before period — it credits the lessons with who the reps already were.

To see where each slope's error comes from, the same estimator is also run on the same panel
with each deal's win replaced by its expected value from the truth (closing does not depend on
lessons in this scenario, so the closed deals are the same): on p0 (no lessons) its slope is the
self-selection bias alone, and on p1 − p0 added to it the part of the lessons' effect its design
recovers, both free of the noise of who won.

    python validation/dose.py --seeds 10 --reps 300
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import statsmodels.api as sm

from training_roi.ingest.folder import ingest_folder
from training_roi.isolate import UnitPanel, dose_changes, estimate_dose_response
from training_roi.linking import link
from training_roi.measure import CohortRule, cohort, lesson_counts, lesson_dates, unit_panel
from training_roi.simulate import simulate
from training_roi.warehouse.connection import connect

TRUTHS = ("ame_per_lesson", "change_per_lesson_completed")


def naive_slope(changes: pl.DataFrame, confidence: float) -> tuple[float, float, float]:
    """Slope of the post-anchor win rate on lessons, weighted by closed deals, with an HC1 interval."""
    x = sm.add_constant(changes["lessons"].to_numpy().astype(float))
    fit = sm.WLS(changes["post"].to_numpy(), x, weights=changes["post_denominator"].to_numpy()).fit(cov_type="HC1")
    lo, hi = fit.conf_int(alpha=1 - confidence)[1]
    return float(fit.params[1]), float(lo), float(hi)


def expected_panel(panel: UnitPanel, folder: Path, column: str) -> UnitPanel:
    """The panel with each unit-month's won deals replaced by Σ ``column`` over its closed, live deals."""
    opps = pl.read_parquet(folder / "truth_opportunities.parquet").filter(pl.col("is_closed") & ~pl.col("is_deleted"))
    sums = opps.group_by(unit="owner_id", period=pl.col("created_date").dt.truncate("1mo")).agg(
        expected=pl.col(column).cast(pl.Float64).sum(), closed_truth=pl.len().cast(pl.Float64))
    frame = (panel.frame.join(sums, on=["unit", "period"], how="left")
             .with_columns(pl.col("expected", "closed_truth").fill_null(0.0)))
    assert panel.denominator is not None
    if not frame["closed_truth"].equals(frame[panel.denominator], check_names=False):
        raise AssertionError("the warehouse's closed deals per rep and month differ from the truth's")
    return replace(panel, frame=frame.with_columns(pl.col("expected").alias(panel.numerator))
                   .drop("expected", "closed_truth"))


DESIGNS = {
    "dated": "dose-response (lessons before each deal)",
    "counts": "dose-response (total lessons, undated)",
    "naive": "naive (after-level on lessons)",
}


def one_run(seed: int, reps: int, months: int, replicates: int) -> dict[str, float]:
    """Simulate, ingest and estimate once; return the truths and every design's slope and interval."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "org"
        simulate(folder, reps=reps, months=months, seed=seed, scenario="microlessons")
        truth = json.loads((folder / "truth.json").read_text())
        con = connect(Path(tmp) / "w.duckdb")
        ingest_folder(folder, con)
        link(con)
        course = truth["program"]["course_activity_id"]
        inputs = {"dated": lesson_dates(con, [course]), "counts": lesson_counts(con, [course])}
        panel = unit_panel(con, cohort(con, CohortRule((course,)), required=False), kpi="win_rate")
        out = {t: float(truth["dose"][t]) for t in TRUTHS}
        for design, doses in inputs.items():
            effect = estimate_dose_response(panel, doses=doses, replicates=replicates, seed=seed)
            parts = {column: estimate_dose_response(expected_panel(panel, folder, column), doses=doses,
                                                    replicates=19, seed=seed).estimate for column in ("p0", "p1")}
            out |= {design: effect.estimate, f"{design}_lo": effect.ci_low, f"{design}_hi": effect.ci_high,
                    f"{design}_selection": parts["p0"], f"{design}_recovered": parts["p1"] - parts["p0"]}
        naive = naive_slope(dose_changes(panel, doses=inputs["counts"], seed=seed), 0.95)
        con.disconnect()
    out |= {"naive": naive[0], "naive_lo": naive[1], "naive_hi": naive[2],
            "learners": float(truth["dose"]["learners"]),
            "mean_lessons": float(truth["dose"]["mean_lessons_per_learner"]),
            "lessons_before_deal": float(truth["dose"]["mean_lessons_before_deal"]),
            "lessons_per_deal": float(truth["dose"]["mean_lessons_completed_per_deal"])}
    return out


def summary(runs: list[dict[str, float]]) -> list[str]:
    """The Markdown tables: per design and truth, bias, RMSE, coverage and interval width; then the error's parts."""
    lines = [
        "| estimator | truth | runs | mean truth (points/lesson) | mean estimate | bias | bias (% of truth) | RMSE "
        "| 95% coverage | mean interval width |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, name in DESIGNS.items():
        est = np.array([r[key] for r in runs])
        lo, hi = np.array([r[f"{key}_lo"] for r in runs]), np.array([r[f"{key}_hi"] for r in runs])
        for t in TRUTHS:
            true = np.array([r[t] for r in runs])
            err = est - true
            lines.append(
                f"| {name} | {t} | {len(runs)} | {100 * true.mean():+.3f} | {100 * est.mean():+.3f} "
                f"| {100 * err.mean():+.3f} | {100 * err.mean() / true.mean():+.1f}% "
                f"| {100 * np.sqrt((err**2).mean()):.3f} | {100 * ((lo <= true) & (true <= hi)).mean():.1f}% "
                f"| {100 * (hi - lo).mean():.3f} |")
    ame = np.array([r["ame_per_lesson"] for r in runs])
    lines += [
        "",
        "Where each dose-response slope's error comes from (mean over runs, points per lesson; share of the "
        "mean AME):",
        "",
        "| part | " + " | ".join(DESIGNS[d] for d in ("dated", "counts")) + " |",
        "| --- | ---: | ---: |",
        f"| true AME per lesson | {100 * ame.mean():+.3f} (100.0%) | {100 * ame.mean():+.3f} (100.0%) |",
    ]
    rows = {
        "lessons' effect the design recovers (slope on p1 − slope on p0)": "recovered",
        "self-selection (slope on p0: no lessons at all)": "selection",
        "noise of who won (estimate − slope on p1)": "noise",
        "estimate": "",
    }
    for label, part in rows.items():
        cells = []
        for design in ("dated", "counts"):
            est = np.array([r[design] for r in runs])
            recovered = np.array([r[f"{design}_recovered"] for r in runs])
            selection = np.array([r[f"{design}_selection"] for r in runs])
            value = {"recovered": recovered, "selection": selection, "noise": est - recovered - selection,
                     "": est}[part].mean()
            cells.append(f"{100 * value:+.3f} ({100 * value / ame.mean():+.1f}%)")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    """Run the seeds and print one line per run, then the summary table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10, help="how many simulated orgs")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--reps", type=int, default=300)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--replicates", type=int, default=999, help="bootstrap replicates of the dose estimator")
    args = parser.parse_args()
    runs = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        start = time.perf_counter()
        r = one_run(seed, args.reps, args.months, args.replicates)
        runs.append(r)
        print(f"seed {seed}: AME {100 * r['ame_per_lesson']:+.3f}, per lesson completed "
              f"{100 * r['change_per_lesson_completed']:+.3f}; dated {100 * r['dated']:+.3f} "
              f"[{100 * r['dated_lo']:+.3f}, {100 * r['dated_hi']:+.3f}] (recovered {100 * r['dated_recovered']:+.3f}, "
              f"selection {100 * r['dated_selection']:+.3f}); counts {100 * r['counts']:+.3f} "
              f"(recovered {100 * r['counts_recovered']:+.3f}); naive {100 * r['naive']:+.3f} points/lesson; "
              f"{r['learners']:.0f} learners, {r['mean_lessons']:.1f} lessons each, "
              f"{r['lessons_before_deal']:.1f} before a deal of {r['lessons_per_deal']:.1f} "
              f"({time.perf_counter() - start:.1f} s)", file=sys.stderr, flush=True)
    print("\n".join(summary(runs)))


if __name__ == "__main__":
    main()
