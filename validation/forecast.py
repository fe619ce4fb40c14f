"""The forecast against later months held out from its fit, on simulated orgs with a known truth.

For each scenario and seed, simulate an org over ``--months`` (36 by default: the program rolls out
in months 15–24), ingest and link it, and answer a study whose forecast is fitted only on deals
created up to ``--fit-months`` months into the period (``forecast.fit_through``): the earliest
trained reps then have about a year after training in the fit, the latest about three months.
The forecast carries the measured months forward (the effect holds after them) to 18 months
after training.

The truth is the simulator's (:mod:`training_roi.simulate.after_training`): for each month *k*
since a trained rep's completion, the expected incremental revenue of the deals they created in it,
divided by the trained reps whose month *k* lies inside the simulated period; through month *m*, the
sum over *k* < *m*: the revenue one trained rep adds in their first *m* months. The forecast's
figure is its cumulative revenue divided by the trained reps it forecasts. Horizons 6, 12 and 18
are checked, each only where the held-out months reach it (18 months after training needs a rep
trained in the first half of the roll-out).

Prints one line per run and the table of validation/README.md; ``--out`` keeps every run as JSON lines.

    python validation/forecast.py --seeds 20 --reps 400 --workers 2
"""

from __future__ import annotations

import json
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pool import orgs_parser, run_all, scenario_jobs

SCENARIOS = ["selection", "turnover", "ramp"]
HORIZONS = (6, 12, 18)


def _month(d: date) -> int:
    return d.year * 12 + d.month - 1


def one_run(scenario: str, seed: int, reps: int, months: int, fit_months: int) -> dict[str, Any]:
    """Simulate, ingest and forecast once; return the truth and the forecast at each horizon."""
    from training_roi import Evaluation, Study, connect, evaluate, ingest_folder, link
    from training_roi.simulate import simulate
    from training_roi.simulate.after_training import incremental_per_trained_rep

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "org"
        simulate(folder, reps=reps, months=months, seed=seed, scenario=scenario)
        truth = json.loads((folder / "truth.json").read_text())
        cut = _month(date.fromisoformat(truth["start"])) + fit_months
        fit_through = date(cut // 12, cut % 12 + 1, 1) - timedelta(days=1)  # the last day of the fit's months
        con = connect(Path(tmp) / "w.duckdb")
        ingest_folder(folder, con)
        link(con)
        study = Study.model_validate({
            "name": f"{scenario} {seed}",
            "program": {"name": truth["program"]["name"], "activities": [truth["program"]["course_activity_id"]]},
            "costs": {"participant_time": {"hourly_rate": 60}},
            "isolation": {"bootstrap_replicates": 200, "seed": seed},
            "attribution": {"enabled": False},
            "forecast": {"fit_through": fit_through.isoformat()},
        })
        answer = evaluate(con, study)
        con.disconnect()
        path = incremental_per_trained_rep(folder, max(HORIZONS))
    assert isinstance(answer, Evaluation)
    out: dict[str, Any] = {"scenario": scenario, "seed": seed, "basis": answer.forecast_basis,
                           "seconds": round(time.perf_counter() - started, 1)}
    f = answer.forecast
    if f is None:
        return out
    out["measured_months"] = f.measured_months
    for h in HORIZONS:
        m = f.at(h)
        if m is None or h not in path:
            continue
        out[f"m{h}"] = {"truth": path[h], "estimate": float(m.revenue) / f.units,
                        "low": float(m.revenue_low) / f.units, "high": float(m.revenue_high) / f.units,
                        "held_out": h > f.measured_months}
    return out


def _summary(runs: list[dict[str, Any]]) -> list[str]:
    from training_roi._format import money

    lines = ["| scenario | horizon (months) | runs | held out | mean truth per rep | mean forecast per rep | "
             "95% interval covers truth |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for scenario in dict.fromkeys(r["scenario"] for r in runs):
        for h in HORIZONS:
            got = [r[f"m{h}"] for r in runs if r["scenario"] == scenario and f"m{h}" in r]
            if not got:
                continue
            n = len(got)
            covers = sum(g["low"] <= g["truth"] <= g["high"] for g in got) / n
            held = sum(g["held_out"] for g in got)
            lines.append(f"| {scenario} | {h} | {n} | {held} | {money(sum(g['truth'] for g in got) / n)} | "
                         f"{money(sum(g['estimate'] for g in got) / n)} | {covers:.0%} |")
    return lines


def _line(r: dict[str, Any]) -> str:
    shown = "  ".join(f"m{h} {r[f'm{h}']['estimate']:,.0f} [{r[f'm{h}']['low']:,.0f}, "
                      f"{r[f'm{h}']['high']:,.0f}] truth {r[f'm{h}']['truth']:,.0f}" for h in HORIZONS if f"m{h}" in r)
    return (f"{r['scenario']:10} seed {r['seed']:3}: measured {r.get('measured_months', '-')}  {shown}  "
            f"({r['seconds']:.0f} s)")


def main() -> None:
    """Run the scenarios over the seeds and print the table."""
    parser = orgs_parser(__doc__, scenarios=SCENARIOS, reps=400, months=36)
    parser.add_argument("--fit-months", type=int, default=27, help="months of deals the forecast is fitted on")
    args = parser.parse_args()
    jobs = scenario_jobs(args)
    runs = run_all(one_run, [(*job, args.reps, args.months, args.fit_months) for job in jobs],
                   workers=args.workers, out=args.out, line=_line)
    print("\n".join(_summary(runs)))


if __name__ == "__main__":
    main()
