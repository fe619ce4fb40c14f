"""Coverage check: how often the difference-in-differences interval covers the true effect.

For each scenario and seed, simulate an org (known truth), ingest and link it, estimate the
win-rate lift in the 180-day window by difference-in-differences with a 2,000-replicate cluster
bootstrap, and compare with the exact truth the simulator computed from potential outcomes. The
same is done for the other KPIs the simulator knows the truth of (average won deal size, sales
cycle) and for the direct estimate of incremental revenue (DiD of won revenue per rep-month ×
the trained reps' months). Prints one line per run and summary tables for validation/README.md.

    python validation/did_coverage.py --seeds 20 --reps 300
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from training_roi.ingest.folder import ingest_folder
from training_roi.isolate import Resampling, did_rate, naive_rates
from training_roi.linking import link
from training_roi.measure import CohortRule, cohort, window_panels
from training_roi.simulate import simulate
from training_roi.warehouse.connection import connect


def one_run(scenario: str, seed: int, reps: int, months: int) -> dict[str, float]:
    """Estimate once and return the truth, the estimates and whether the interval covers."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "org"
        simulate(folder, reps=reps, months=months, seed=seed, scenario=scenario)
        truth = json.loads((folder / "truth.json").read_text())
        con = connect(Path(tmp) / "w.duckdb")
        ingest_folder(folder, con)
        link(con)
        trained = cohort(con, CohortRule((truth["program"]["course_activity_id"],)))
        panel = window_panels(con, trained, baseline_days=182, windows=[180], seed=seed)[180]
        r = Resampling.draw(len(panel.treated.units), len(panel.comparison.units), replicates=2000, seed=seed)
        effect = did_rate(panel.treated, panel.comparison, resampling=r)
        before_after, trained_vs_untrained = naive_rates(panel.treated, panel.comparison, resampling=r)
        size = did_rate(*panel.groups["avg_won_deal_size"], resampling=r)
        cycle = did_rate(*panel.groups["sales_cycle_days"], resampling=r)
        revenue = did_rate(*panel.groups["revenue_per_rep"], resampling=r)
        con.disconnect()
    t = truth["truth"]["windows"]["180"]
    true = t["att_win_rate"]
    months = panel.post_exposure_months
    out = {
        "truth": true, "did": effect.estimate, "lo": effect.ci_low, "hi": effect.ci_high,
        "covers": float(effect.ci_low <= true <= effect.ci_high),
        "credits_nothing": float(effect.interval_includes_zero),
        "naive_before_after": before_after.estimate, "naive_trained_vs_untrained": trained_vs_untrained.estimate,
    }
    for key, e, scale, truth_key in (("size", size, 1.0, "att_avg_won_deal_size"),
                                     ("cycle", cycle, 1.0, "att_cycle_days"),
                                     ("revenue", revenue, months, "incremental_revenue")):
        out[f"{key}_truth"] = t[truth_key]
        out[f"{key}_did"] = e.estimate * scale
        out[f"{key}_covers"] = float(e.ci_low * scale <= t[truth_key] <= e.ci_high * scale)
    return out


def main() -> None:
    """Run the scenarios over the seeds and print the coverage table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20, help="how many seeds (orgs) per scenario")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--reps", type=int, default=300)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--scenarios", nargs="*", default=["randomised", "selection", "null"])
    args = parser.parse_args()
    table = []
    for scenario in args.scenarios:
        runs = []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            start = time.perf_counter()
            r = one_run(scenario, seed, args.reps, args.months)
            runs.append(r)
            print(f"{scenario:10} seed {seed:3}: truth {r['truth']:+.4f}  DiD {r['did']:+.4f} "
                  f"[{r['lo']:+.4f}, {r['hi']:+.4f}]  naive b/a {r['naive_before_after']:+.4f}  "
                  f"naive t/u {r['naive_trained_vs_untrained']:+.4f}  ({time.perf_counter() - start:.0f} s)",
                  file=sys.stderr, flush=True)
        n = len(runs)

        def mean(key: str, rows: list[dict[str, float]] = runs) -> float:
            return sum(r[key] for r in rows) / len(rows)

        bias = {k: mean(k) - mean("truth") for k in ("did", "naive_before_after", "naive_trained_vs_untrained")}
        others = {k: (mean(f"{k}_truth"), mean(f"{k}_covers"), mean(f"{k}_did") - mean(f"{k}_truth"))
                  for k in ("size", "cycle", "revenue")}
        table.append((scenario, n, mean("truth"), mean("covers"), mean("credits_nothing"), bias, others))
    print("| scenario | runs | mean true lift | 95% interval covers truth | interval includes 0 | "
          "bias DiD | bias naive before/after | bias naive trained vs untrained |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for scenario, n, truth, covers, zero, bias, _ in table:
        print(f"| {scenario} | {n} | {truth:+.4f} | {covers:.0%} | {zero:.0%} | {bias['did']:+.4f} | "
              f"{bias['naive_before_after']:+.4f} | {bias['naive_trained_vs_untrained']:+.4f} |")
    print()
    print("| scenario | effect | mean truth | 95% interval covers truth | bias |")
    print("| --- | --- | ---: | ---: | ---: |")
    names = {"size": "average won deal size ($)", "cycle": "sales cycle (days)",
             "revenue": "incremental revenue, direct ($)"}
    for scenario, _, _, _, _, _, others in table:
        for key, (mean_truth, cover, bias_k) in others.items():
            print(f"| {scenario} | {names[key]} | {mean_truth:+,.1f} | {cover:.0%} | {bias_k:+,.1f} |")


if __name__ == "__main__":
    main()
