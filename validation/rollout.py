"""Coverage check for CRM roll-out studies: whether the go-live's intervals cover the simulated truth.

For each seed, simulate a staged CRM go-live (scenario ``crm_golive``: half the teams go live in
month 12, the rest in month 16; the new CRM shortens first response ×0.4 and lifts conversion;
or ``crm_golive_team_months``, where a team's first responses also share a shock each month),
ingest and link it, answer a roll-out study (go-live dates by team, the staggered estimator with
not-yet-live teams as the comparison, intervals by team: 999 team-bootstrap replicates, or the
wild cluster restricted bootstrap with fewer than 30 teams) and compare each effect with the
exact truth the simulator computed from both potential outcomes of every lead. Win rate is a
placebo (the go-live changes no deal): how often its interval excludes 0 is the false-finding
rate. The same estimates' intervals by rep (resampling reps, as if they were independent; the
estimate keeps it in ``details``) are checked too. Prints one line per run and a summary table for
validation/README.md.

    python validation/rollout.py --seeds 10 --reps 300
    python validation/rollout.py --seeds 20 --reps 120 --scenario crm_golive_team_months
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from training_roi.evaluation.rollout import evaluate_rollout
from training_roi.ingest.folder import ingest_folder
from training_roi.linking import link
from training_roi.simulate import simulate
from training_roi.study import Study, plan_study
from training_roi.warehouse.connection import connect

VALUE = 12_000.0


def one_run(seed: int, reps: int, scenario: str) -> dict[str, float]:
    """One simulated go-live answered: each effect, its interval, and the truth."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "org"
        simulate(folder, reps=reps, months=24, seed=seed, scenario=scenario)
        truth = json.loads((folder / "truth.json").read_text())
        con = connect(Path(tmp) / "w.duckdb")
        ingest_folder(folder, con)
        link(con)
        study = Study.model_validate({
            "name": "CRM rollout", "program": {"name": "CRM rollout",
                                               "activities": [truth["program"]["course_activity_id"]]},
            "rollout": {"go_live_by_team": {t["team_id"]: t["go_live_date"] for t in truth["crm"]["teams"]},
                        "value_per_conversion": VALUE},
            "costs": {"participant_time": {"hourly_rate": 60}},
            "isolation": {"bootstrap_replicates": 999, "seed": seed},
        })
        ev = evaluate_rollout(con, plan_study(study))
        con.disconnect()
    overall = truth["crm"]["overall"]
    kpis = {k.kpi: k.effect for k in ev.kpis}
    out: dict[str, float] = {}
    for kpi, true in (("lead_conversion", overall["att_conversion_rate"]),
                      ("lead_response_hours", overall["att_first_response_hours"]), ("win_rate", 0.0)):
        e = kpis[kpi]
        assert e is not None
        out[f"{kpi}_truth"] = true
        out[f"{kpi}_estimate"] = e.estimate
        out[f"{kpi}_covers"] = float(e.ci_low <= true <= e.ci_high)
        out[f"{kpi}_excludes_0"] = float(not e.ci_low <= 0 <= e.ci_high)
    for kpi, true in (("lead_conversion", overall["att_conversion_rate"]),
                      ("lead_response_hours", overall["att_first_response_hours"])):
        e = kpis[kpi]
        assert e is not None
        out[f"{kpi}_by_rep_covers"] = float(e.details["unit_ci_low"] <= true <= e.details["unit_ci_high"])
    out["teams"] = float(len(truth["crm"]["teams"]))
    out["wild"] = float("wild" in ev.inference)
    benefit = ev.benefits[0] if ev.benefits else None
    true_benefit = overall["incremental_conversions"] * VALUE
    out["benefit_covers"] = float(benefit is not None and benefit.interval is not None
                                  and float(benefit.interval[0]) <= true_benefit <= float(benefit.interval[1]))
    return out


def main() -> None:
    """Run the seeds and print the summary."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--reps", type=int, default=300)
    parser.add_argument("--scenario", default="crm_golive", choices=("crm_golive", "crm_golive_team_months"))
    args = parser.parse_args()
    runs = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        start = time.perf_counter()
        r = one_run(seed, args.reps, args.scenario)
        runs.append(r)
        print(f"seed {seed}: conversion {r['lead_conversion_estimate']:+.4f} (truth {r['lead_conversion_truth']:+.4f}, "
              f"covers {r['lead_conversion_covers']:.0f}); response {r['lead_response_hours_estimate']:+.1f} h "
              f"(truth {r['lead_response_hours_truth']:+.1f}, covers {r['lead_response_hours_covers']:.0f}); "
              f"by rep covers {r['lead_response_hours_by_rep_covers']:.0f}; "
              f"placebo win rate {r['win_rate_estimate']:+.4f}; "
              f"{r['teams']:.0f} teams{' (wild bootstrap)' if r['wild'] else ''}; {time.perf_counter() - start:.0f} s",
              flush=True)
    n = len(runs)

    def mean(key: str) -> float:
        return sum(r[key] for r in runs) / n

    print("\n| effect | runs | mean truth | bias | 95% interval covers truth | interval excludes 0 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for kpi, label in (("lead_conversion", "lead conversion"), ("lead_response_hours", "first-response hours"),
                       ("win_rate", "win rate (placebo, truth 0)")):
        bias = mean(f"{kpi}_estimate") - mean(f"{kpi}_truth")
        print(f"| {label} | {n} | {mean(f'{kpi}_truth'):+.4f} | {bias:+.4f} | {mean(f'{kpi}_covers'):.0%} | "
              f"{mean(f'{kpi}_excludes_0'):.0%} |")
    print(f"| lead conversion, interval by rep | {n} | | | {mean('lead_conversion_by_rep_covers'):.0%} | |")
    print(f"| first-response hours, interval by rep | {n} | | | {mean('lead_response_hours_by_rep_covers'):.0%} | |")
    print(f"\nbenefit interval covers the true benefit in {mean('benefit_covers'):.0%} of {n} orgs; "
          f"{mean('teams'):.1f} teams on average, the wild cluster bootstrap in {mean('wild'):.0%} of orgs")


if __name__ == "__main__":
    main()
