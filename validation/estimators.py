"""Every estimator of the family against the simulator's truth, scenario by scenario.

For each scenario and seed: simulate an org, ingest and link it, build the monthly panel of win
rate (reps, or accounts for customer education), run every estimator side by side
(:func:`training_roi.isolate.compare_methods`, without the placebo challenges) and the windowed
difference-in-differences of the report, and compare each with the true 180-day effect. Prints
one line per run and a Markdown table per scenario: bias, RMSE, 95% interval coverage, and how
often the interval excludes zero (in the no-effect scenario: false crediting).

    python validation/estimators.py --seeds 10 --reps 300

The monthly estimators average the effect over the six calendar months from the training month
on, the windowed DiD over deals created in the 180 days after each completion, and the truth is
the latter; the small difference of estimand is part of what the table measures.

In the covariate worlds (``covariate_trends``, ``poor_overlap``, ``covariate_null``) truth.json names
the attribute that drives both enrolment and the trend (the rep's region, carried by the User
export's ``UserRoleId``): the panel then carries it as covariates, one 0/1 column per region but
the first (:func:`with_covariate`), for the designs that condition on covariates.

    python validation/estimators.py --seeds 10 --reps 1000 --scenarios covariate_trends poor_overlap covariate_null
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl
from ibis import BaseBackend

from training_roi.ingest.folder import ingest_folder
from training_roi.isolate import compare_methods, did_rate
from training_roi.linking import link
from training_roi.measure import CohortRule, cohort, unit_panel, window_panels
from training_roi.measure.panels import UnitPanel
from training_roi.simulate import simulate
from training_roi.warehouse.connection import connect

SCENARIOS = ("randomised", "selection", "null", "staggered", "customer")


def with_covariate(con: BaseBackend, panel: UnitPanel, truth: dict[str, Any]) -> UnitPanel:
    """The panel with truth.json's covariate (the reps' region, read from ``crm_user.role_id``) as covariates.

    One 0/1 column per region but the first (``region_emea``, …), constant within a rep; a panel
    whose truth names no covariate is returned as it is.
    """
    cov = truth.get("covariate")
    if cov is None:
        return panel
    users = pl.from_arrow(con.table("crm_user").select("user_id", "role_id").to_pyarrow())
    assert isinstance(users, pl.DataFrame)
    regions = [(name, r["role_id"]) for name, r in cov["regions"].items() if r["role_id"] is not None]
    columns = {f"{cov['name']}_{re.sub(r'[^a-z0-9]+', '_', name.lower()).strip('_')}": role
               for name, role in regions[1:]}
    dummies = users.select(pl.col("user_id").alias("unit"),
                           *(pl.col("role_id").eq(role).fill_null(False).cast(pl.Float64).alias(c)
                             for c, role in columns.items()))
    frame = panel.frame.join(dummies, on="unit", how="left").with_columns(pl.col(*columns).fill_null(0.0))
    return dataclasses.replace(panel, frame=frame, covariates=(*panel.covariates, *columns))


def one_run(scenario: str, seed: int, reps: int, months: int, replicates: int) -> dict[str, tuple[float, float, float]]:
    """(estimate, low, high) per method, and the truth under the key ``truth``."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "org"
        simulate(folder, reps=reps, months=months, seed=seed, scenario=scenario)
        truth = json.loads((folder / "truth.json").read_text())
        unit = truth.get("unit", "rep")
        course = truth["program"]["course_activity_id"]
        con = connect(Path(tmp) / "w.duckdb")
        ingest_folder(folder, con)
        link(con)
        trained = cohort(con, CohortRule((course,), unit=unit))
        window = window_panels(con, trained, baseline_days=182, windows=[180], seed=seed)[180]
        out: dict[str, tuple[float, float, float]] = {}
        windowed = did_rate(window.treated, window.comparison, replicates=replicates, seed=seed)
        out["windowed DiD"] = (windowed.estimate, windowed.ci_low, windowed.ci_high)
        panel = with_covariate(con, unit_panel(con, trained, kpi="win_rate"), truth)
        comparison = compare_methods(panel, post_months=6, replicates=replicates, seed=seed, refutations=False,
                                     randomised=scenario == "randomised")
        for r in comparison.results:
            if r.effect is not None:
                out[r.method] = (r.effect.estimate, r.effect.ci_low, r.effect.ci_high)
        out["recommended"] = out.get(comparison.recommended or "", (math.nan, math.nan, math.nan))
        con.disconnect()
    t = truth["truth"]["windows"]["180"]["att_win_rate"]
    out["truth"] = (t, t, t)
    return out


def main() -> None:
    """Run the scenarios over the seeds and print one table per scenario."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--reps", type=int, default=300)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--replicates", type=int, default=499)
    parser.add_argument("--scenarios", nargs="*", default=list(SCENARIOS))
    args = parser.parse_args()
    for scenario in args.scenarios:
        runs = []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            start = time.perf_counter()
            r = one_run(scenario, seed, args.reps, args.months, args.replicates)
            runs.append(r)
            line = "  ".join(f"{k} {v[0]:+.4f}" for k, v in r.items())
            print(f"{scenario:10} seed {seed:3}: {line}  ({time.perf_counter() - start:.0f} s)", file=sys.stderr,
                  flush=True)
        methods = sorted({k for r in runs for k in r} - {"truth"})
        print(f"\n{scenario} ({len(runs)} orgs, mean true lift {sum(r['truth'][0] for r in runs) / len(runs):+.4f})\n")
        print("| method | runs | bias | RMSE | 95% interval covers truth | interval excludes 0 |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for m in methods:
            rows = [(r[m], r["truth"][0]) for r in runs if m in r and not math.isnan(r[m][0])]
            if not rows:
                continue
            n = len(rows)
            bias = sum(e[0] - t for e, t in rows) / n
            rmse = math.sqrt(sum((e[0] - t) ** 2 for e, t in rows) / n)
            cover = sum(e[1] <= t <= e[2] for e, t in rows) / n
            excludes = sum(not (e[1] <= 0 <= e[2]) for e, _ in rows) / n
            print(f"| {m} | {n} | {bias:+.4f} | {rmse:.4f} | {cover:.0%} | {excludes:.0%} |", flush=True)


if __name__ == "__main__":
    main()
