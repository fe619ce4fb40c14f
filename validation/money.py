"""The money against the simulator's truth: participant time, total cost, and incremental revenue by definition.

For each scenario and seed, simulate an org (known truth), ingest and link it, and answer a study
of its program through the product's own entry point (``training_roi.evaluate``), with participant
time at $60 an hour and no shared-cost allocation. Compare with the truth the simulator wrote:

* participant time: the minutes the LMS recorded for each learner, counted once (truth_time.csv /
  ``participant_time.minutes_recorded``) × $60 / 60, against the cost the product derived;
* total cost: the program's cost lines (``costs.program_total``) + that participant time;
* incremental revenue in the 180-day window, by each definition: booked (deals closing in the
  window, ``revenue_closing_in_window``) and eventual (deals created in it, open ones at their
  expected value, ``revenue_created_in_window``): the central estimate's bias, the interval's
  coverage, and how often the credited figure exceeds the truth (it should rarely: it is the
  one-sided 95% lower bound);
* in worlds without an effect, how often anything is credited.

Runs are independent and go to a process pool (``--workers``). Prints one line per run and the
tables of validation/README.md; ``--out`` keeps every run's figures as JSON lines.

    python validation/money.py --seeds 20 --reps 4000 --workers 2
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pool import orgs_parser, run_all, scenario_jobs

if TYPE_CHECKING:
    from training_roi import Evaluation

SCENARIOS = ["selection", "randomised", "null", "turnover", "long_cycles", "deal_size"]
RATE = 60
REVENUE_TRUTH = {"booked": "revenue_closing_in_window", "eventual": "revenue_created_in_window"}
"""Each revenue definition's truth in a window of truth.json."""


def answer_org(scenario: str, seed: int, *, reps: int, months: int, study: dict[str, Any],
               effect_scale: float = 1.0) -> tuple[dict[str, Any], Evaluation]:
    """Simulate an org, ingest and link it, and answer ``study`` through ``training_roi.evaluate``.

    ``study`` holds the study's settings but its name and program, which are the simulated
    program's. Returns the simulator's truth.json and the answer.
    """
    from training_roi import Evaluation, Study, connect, evaluate, ingest_folder, link
    from training_roi.simulate import simulate

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "org"
        simulate(folder, reps=reps, months=months, seed=seed, scenario=scenario, effect_scale=effect_scale)
        truth = json.loads((folder / "truth.json").read_text())
        con = connect(Path(tmp) / "w.duckdb")
        ingest_folder(folder, con)
        link(con)
        program = {"name": truth["program"]["name"], "activities": [truth["program"]["course_activity_id"]]}
        answer = evaluate(con, Study.model_validate({"name": f"{scenario} {seed}", "program": program, **study}))
        con.disconnect()
    assert isinstance(answer, Evaluation)
    return truth, answer


def true_costs(truth: dict[str, Any], rate: float = RATE) -> tuple[float, float]:
    """The participant time and the total cost the simulator knows, to the cent.

    Participant time: the minutes each learner's LMS recorded, counted once (truth_time.csv), at
    ``rate`` an hour; total cost: the program's cost lines + that time.
    """
    time_ = round(float(truth["participant_time"]["minutes_recorded"]) * rate / 60, 2)
    return time_, round(float(truth["costs"]["program_total"]) + time_, 2)


def one_run(scenario: str, seed: int, reps: int, months: int, replicates: int) -> dict[str, Any]:
    """Simulate, ingest and answer once; return the truth and the product's figures."""
    start = time.perf_counter()
    truth, answer = answer_org(scenario, seed, reps=reps, months=months, study={
        "costs": {"participant_time": {"hourly_rate": RATE}},
        "isolation": {"bootstrap_replicates": replicates, "seed": seed},
        "attribution": {"enabled": False},
    })
    w = truth["truth"]["windows"]["180"]
    true_time, true_cost = true_costs(truth)
    out: dict[str, Any] = {
        "scenario": scenario, "seed": seed,
        "time_truth": true_time, "time": float(answer.costs.participant_time_amount),
        "cost_truth": true_cost, "cost": float(answer.costs.total),
        "seconds": round(time.perf_counter() - start, 1),
    }
    for name, key in REVENUE_TRUTH.items():
        r = answer.primary.revenue[name]
        lo, hi = r.interval if r.interval else (float("nan"), float("nan"))
        out |= {f"{name}_truth": float(w[key]), f"{name}": float(r.estimate) if r.estimate is not None else None,
                f"{name}_lo": lo, f"{name}_hi": hi, f"{name}_credited": float(r.credited)}
    return out


def _summary(runs: list[dict[str, Any]]) -> list[str]:
    from training_roi._format import money

    lines = ["| scenario | runs | definition | mean truth | mean estimate | bias | 95% interval covers truth | "
             "credited above truth | anything credited |",
             "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    cost = ["| scenario | runs | participant time: largest gap | total cost: largest gap |",
            "| --- | ---: | ---: | ---: |"]
    for scenario in dict.fromkeys(r["scenario"] for r in runs):
        rows = [r for r in runs if r["scenario"] == scenario]
        n = len(rows)
        for name in ("booked", "eventual"):
            got = [r for r in rows if r[name] is not None]
            truth = sum(r[f"{name}_truth"] for r in got) / max(len(got), 1)
            mean = sum(r[name] for r in got) / max(len(got), 1)
            bias = f"{(mean - truth) / abs(truth):+.1%}" if abs(truth) > 1 else money(mean - truth)
            covers = sum(r[f"{name}_lo"] <= r[f"{name}_truth"] <= r[f"{name}_hi"] for r in got) / max(len(got), 1)
            above = sum(r[f"{name}_credited"] > r[f"{name}_truth"] for r in got) / max(len(got), 1)
            credited = sum(r[f"{name}_credited"] > 0 for r in got) / max(len(got), 1)
            lines.append(f"| {scenario} | {n} | {name} | {money(truth)} | {money(mean)} | {bias} | {covers:.0%} | "
                         f"{above:.0%} | {credited:.0%} |")
        gap_time = max(abs(r["time"] - r["time_truth"]) for r in rows)
        gap_cost = max(abs(r["cost"] - r["cost_truth"]) for r in rows)
        cost.append(f"| {scenario} | {n} | ${gap_time:,.2f} | ${gap_cost:,.2f} |")
    return [*lines, "", *cost]


def _line(r: dict[str, Any]) -> str:
    return (f"{r['scenario']:12} seed {r['seed']:3}: booked {r['booked'] or 0:,.0f} "
            f"(truth {r['booked_truth']:,.0f}, credited {r['booked_credited']:,.0f})  "
            f"eventual {r['eventual'] or 0:,.0f} (truth {r['eventual_truth']:,.0f})  "
            f"time ${r['time']:,.2f} (truth ${r['time_truth']:,.2f})  ({r['seconds']:.0f} s)")


def main() -> None:
    """Run the scenarios over the seeds and print the tables."""
    parser = orgs_parser(__doc__, scenarios=SCENARIOS, reps=4000, months=24)
    parser.add_argument("--replicates", type=int, default=1000, help="bootstrap replicates per study")
    args = parser.parse_args()
    jobs = scenario_jobs(args)
    runs = run_all(one_run, [(*job, args.reps, args.months, args.replicates) for job in jobs],
                   workers=args.workers, out=args.out, line=_line)
    print("\n".join(_summary(runs)))


if __name__ == "__main__":
    main()
