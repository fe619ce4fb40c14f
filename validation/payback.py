"""Is the probability of payback calibrated? P(ROI > 0) against the true ROI, over many simulated orgs.

For each seed, simulate an org whose program's effect on deals is the scenario's times a scale
drawn from that seed (uniform over ``--scales``; ``simulate(effect_scale=…)``), so that some
programs pay back and some do not; ingest, link and answer a study of it through the product's
own entry point (``training_roi.evaluate``, as validation/money.py does), with participant time at
$60 an hour, no cost ranges and the gross margin ``--margin``. The truth: the true ROI =
(the true incremental revenue in the primary window by the study's revenue definition × margin −
the true total cost) ÷ the true total cost, from truth.json. The forecast: the product's
P(ROI > 0) (``Evaluation.payback.prob_positive``).

A forecast is calibrated when, of the programs it gives a probability of about p, about a share p
pay back. The script prints a reliability table (predicted P in bins; per bin the runs, the mean
predicted P and the observed share paying back with its 95% Wilson interval), the Brier score
against that of a constant forecast at the base rate, and how often the true ROI falls outside
the product's 5th to 95th percentiles of ROI.

Runs are independent and go to a process pool (``--workers``); ``--out`` keeps every run's
figures as JSON lines, and ``--read`` prints the tables from such a file without running again
(with ``--scales``, of the runs whose effect scale lies in that range: a narrower world).

    python validation/payback.py --seeds 400 --workers 2 --out payback.jsonl
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from functools import partial
from pathlib import Path
from typing import Any

from pool import run_all, wilson

MARGIN = 0.1
"""Gross margin: with it the break-even incremental revenue of a 1,000-rep org is about half the
randomised scenario's true effect, so scales of −0.5 to 1.5 put the truth on both sides."""
SCALES = (-0.5, 1.5)
"""The effect scale is uniform over this range (0: no effect; negative: a program that harms)."""
EDGES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
"""The bins of predicted P(ROI > 0) of the reliability table (the last one includes 1)."""


def effect_scale(seed: int, scales: tuple[float, float] = SCALES) -> float:
    """The seed's effect scale: uniform over ``scales``, drawn from a generator of the seed alone."""
    import numpy as np

    return float(np.random.default_rng(seed).uniform(*scales))


def one_run(seed: int, *, scenario: str, reps: int, months: int, replicates: int, margin: float,
            revenue: str, scales: tuple[float, float]) -> dict[str, Any]:
    """Simulate, ingest and answer once; return the true ROI and the product's P(ROI > 0)."""
    from money import RATE, REVENUE_TRUTH, answer_org, true_costs

    start = time.perf_counter()
    scale = effect_scale(seed, scales)
    truth, answer = answer_org(scenario, seed, reps=reps, months=months, effect_scale=scale, study={
        "costs": {"participant_time": {"hourly_rate": RATE}},
        "isolation": {"bootstrap_replicates": replicates, "seed": seed},
        "windows": {"sensitivity_days": []},  # the primary window alone
        "attribution": {"enabled": False},
        "forecast": {"enabled": False},  # the months after training play no part in the primary window's P
        "value": {"gross_margin": margin, "revenue": revenue},
    })
    window = answer.primary.window_days
    true_revenue = float(truth["truth"]["windows"][str(window)][REVENUE_TRUTH[revenue]])
    _, true_cost = true_costs(truth)
    r = answer.primary.revenue[revenue]
    odds = answer.payback
    return {
        "scenario": scenario, "seed": seed, "effect_scale": scale, "window_days": window, "revenue": revenue,
        "margin": margin, "revenue_truth": true_revenue, "cost_truth": true_cost, "cost": float(answer.costs.total),
        "roi_truth": (true_revenue * margin - true_cost) / true_cost * 100,
        "estimate": None if r.estimate is None else float(r.estimate),
        "interval": list(r.interval) if r.interval else None,
        "prob_positive": None if odds is None else odds.prob_positive,
        "roi_quantiles": None if odds is None else odds.roi_quantiles,
        "seconds": round(time.perf_counter() - start, 1),
    }


def reliability(runs: list[dict[str, Any]], edges: tuple[float, ...] = EDGES) -> list[dict[str, Any]]:
    """Per bin of predicted P(ROI > 0): the runs, the mean predicted P, the share that paid back and its interval.

    A run pays back when its true ROI is above 0. A P equal to an inner edge falls in the bin above
    it; the last bin holds 1.
    """
    rows = []
    for i, (lo, hi) in enumerate(itertools.pairwise(edges)):
        last = i == len(edges) - 2
        inside = [r for r in runs if lo <= r["prob_positive"] < hi or (last and r["prob_positive"] == hi)]
        paid = sum(r["roi_truth"] > 0 for r in inside)
        n = len(inside)
        rows.append({"low": lo, "high": hi, "runs": n,
                     "predicted": sum(r["prob_positive"] for r in inside) / n if n else None,
                     "observed": paid / n if n else None, "interval": wilson(paid, n) if n else None})
    return rows


def brier(runs: list[dict[str, Any]]) -> tuple[float, float]:
    """The Brier score of P(ROI > 0), and that of a constant forecast at the base rate (the observed share)."""
    outcomes = [float(r["roi_truth"] > 0) for r in runs]
    base = sum(outcomes) / len(outcomes)
    score = sum((r["prob_positive"] - y) ** 2 for r, y in zip(runs, outcomes, strict=True)) / len(runs)
    return score, base * (1 - base)


def _line(r: dict[str, Any]) -> str:
    """One run, as it ends."""
    from training_roi._format import percent

    p = r["prob_positive"]
    return (f"seed {r['seed']:4}: scale {r['effect_scale']:.2f}  true ROI {percent(r['roi_truth'])}  "
            f"P(ROI > 0) {'—' if p is None else f'{p:.3f}'}  ({r['seconds']:.0f} s)").replace("-", "−")


def _summary(runs: list[dict[str, Any]]) -> list[str]:
    from training_roi._format import percent

    answered = [r for r in runs if r["prob_positive"] is not None]
    lines = ["| predicted P(ROI > 0) | runs | mean predicted | observed share paying back | 95% interval |",
             "| --- | ---: | ---: | ---: | --- |"]
    for row in reliability(answered):
        if not row["runs"]:
            lines.append(f"| {row['low']:.1f}–{row['high']:.1f} | 0 | | | |")
            continue
        lo, hi = row["interval"]
        lines.append(f"| {row['low']:.1f}–{row['high']:.1f} | {row['runs']} | {row['predicted']:.1%} | "
                     f"{row['observed']:.1%} | {lo:.1%} to {hi:.1%} |")
    n = len(answered)
    paid = sum(r["roi_truth"] > 0 for r in answered)
    lo, hi = wilson(paid, n)
    score, reference = brier(answered)
    q = [r["roi_quantiles"] for r in answered]
    below = sum(x["p5"] is None or r["roi_truth"] < x["p5"] for r, x in zip(answered, q, strict=True))
    above = sum(x["p95"] is not None and r["roi_truth"] > x["p95"] for r, x in zip(answered, q, strict=True))
    predicted = sum(r["prob_positive"] for r in answered) / n
    return [*lines, "",
            f"runs: {n} answered of {len(runs)}; mean predicted P(ROI > 0) {predicted:.1%}; "
            f"observed share paying back {paid / n:.1%} ({lo:.1%} to {hi:.1%})",
            f"Brier score {score:.4f}; a constant forecast at the base rate {reference:.4f} "
            f"(skill {percent(100 * (1 - score / reference))})" if reference else f"Brier score {score:.4f}",
            f"true ROI below the product's 5th percentile of ROI in {below / n:.1%} of runs, "
            f"above its 95th in {above / n:.1%}"]


def main() -> None:
    """Run the seeds and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=400, help="how many orgs")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--scenario", default="randomised")
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--replicates", type=int, default=2000, help="bootstrap replicates per study")
    parser.add_argument("--margin", type=float, default=MARGIN, help="the study's gross margin")
    parser.add_argument("--revenue", choices=["booked", "eventual"], default="booked",
                        help="the study's revenue definition")
    parser.add_argument("--scales", type=float, nargs=2, default=SCALES, metavar=("LOW", "HIGH"),
                        help="the effect scale's range (with --read: only the runs whose scale is in it)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, help="write every run's figures here (JSON lines)")
    parser.add_argument("--read", type=Path, help="print the tables of the runs in this file (JSON lines) and stop")
    args = parser.parse_args()
    if args.read is not None:
        runs = [r for line in args.read.read_text(encoding="utf-8").splitlines() if line.strip()
                if args.scales[0] <= (r := json.loads(line))["effect_scale"] <= args.scales[1]]
        print("\n".join(_summary(runs)))
        return
    settings = {"scenario": args.scenario, "reps": args.reps, "months": args.months, "replicates": args.replicates,
                "margin": args.margin, "revenue": args.revenue, "scales": tuple(args.scales)}
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    runs = run_all(partial(one_run, **settings), [(seed,) for seed in seeds], workers=args.workers, out=args.out,
                   line=_line)
    print("\n".join(_summary(runs)))


if __name__ == "__main__":
    main()
