"""Coverage check of the drill-down: how often a team's 95% interval covers the team's true effect.

For each scenario and seed, simulate an org (known truth), ingest and link it, and measure the
drill-down of a study of its course (``evaluation.drill``, as the dashboard does). The team
truth is the exact effect on win rate over the team's trained reps, computed from the
simulator's potential outcomes (``truth_opportunities.parquet``) exactly as truth.json's org
figure is: the mean of won1 − won0 over the closed, non-deleted deals they created 1 to 180
days after their training. The org figure recomputed that way must equal truth.json's (a guard).

The simulator's teams have about eight reps (``simulate/org.py``), so with about half of them
trained none reaches the drill-down's ``MIN_UNITS`` trained reps and no team gets an interval;
the script counts that, then measures the intervals on larger teams: within each region, runs
of consecutive teams (2 to 8 of them, drawn per run) are merged under the first one's manager.
Only the drill-down's grouping changes; the panel, the estimator and the truth's definition do
not. Teams compared with the whole comparison group (fewer than ``MIN_UNITS`` comparison reps of
their own) are reported apart; the ``staggered`` scenario, which trains most reps, makes many.

Each trained rep's interval (Newcombe's, of their own change in win rate from the baseline to
the post window) is checked against what it estimates: the change in their expected win rate,
the mean win probability of their closed deals after training (treated where exposed) minus
that of their closed deals before. It is not the rep's effect, and the script says how often it
excludes zero although the effect is positive. The rep's deals counted here must equal the
panel's (a guard).

Coverage is given with its own 95% Wilson interval, overall, by team size (trained reps) and by
comparison. Prints one line per org and the tables for validation/README.md.

    python validation/drill_coverage.py --seeds 25 --reps 500
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from pool import wilson
from scipy.stats import norm
from scipy.stats import t as student_t

from training_roi import Study, connect, ingest_folder, link
from training_roi.evaluation.drill import MIN_UNITS, Drill, Grouping, drill, group_rows, org_row, rep_rows
from training_roi.simulate import simulate

BANDS = ((10, 14), (15, 24), (25, 39), (40, 10**9))
"""Team size bands, in trained reps."""


def window_truth(opps: pl.DataFrame, owners: Sequence[str] | None, window: int) -> tuple[float | None, int]:
    """The exact effect on win rate over the deals of ``owners`` (all when None) in the post window.

    As truth.json's ``att_win_rate``: the mean of won1 − won0 over the exposed, closed,
    non-deleted opportunities created 1..``window`` days after their owner's training. Also
    returns how many deals that is.
    """
    sel = opps.filter(pl.col("exposed") & ~pl.col("is_deleted") & pl.col("is_closed")
                      & (pl.col("days_since_completion") <= window))
    if owners is not None:
        sel = sel.filter(pl.col("owner_id").is_in(list(owners)))
    if sel.is_empty():
        return None, 0
    gained = sel["won1"].cast(pl.Int64).to_numpy() - sel["won0"].cast(pl.Int64).to_numpy()
    return float(gained.mean()), sel.height


def merged(d: Drill, region_of: dict[str, str], rng: np.random.Generator, lo: int, hi: int) -> Drill:
    """The drill-down with each region's teams merged in runs of ``lo``..``hi`` consecutive teams.

    A merged team is keyed by its first manager; the reps without a manager stay apart. Only the
    grouping of the drill-down changes.
    """
    natural = d.groupings["team"]
    by_region: dict[str, list[str]] = {}
    for team in sorted(natural.members):
        regions = sorted({region_of.get(u, "") for u in natural.members[team]})
        by_region.setdefault(regions[0], []).append(team)
    into: dict[str, str] = {}
    for teams in by_region.values():
        at = 0
        while at < len(teams):
            k = int(rng.integers(lo, hi + 1))
            for t in teams[at:at + k]:
                into[t] = teams[at] if not t.startswith("(") else t
            at += k
    team_of = {u: into[t] for u, t in natural.group_of.items()}
    members: dict[str, set[str]] = {}
    for unit, team in team_of.items():
        members.setdefault(team, set()).add(unit)
    grouping = Grouping(by="team", group_of=team_of, members={t: frozenset(u) for t, u in members.items()},
                        names={t: natural.names.get(t, t) for t in members})
    return replace(d, groupings={**d.groupings, "team": grouping})


def rep_truths(d: Drill, opps: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """Each trained rep's deals in the baseline and post windows, with their win probabilities.

    Returns per rep: closed deals and wins in each window (to check against the panel), the true
    change in expected win rate (mean p of the post window's closed deals, p1 where exposed else
    p0, minus the baseline's) and the rep's own effect (mean p1 − p0 over the post window's
    exposed closed deals, 0 for the others).
    """
    anchors = pl.DataFrame({"owner_id": list(d.anchors), "anchor": list(d.anchors.values())},
                           schema={"owner_id": pl.String, "anchor": pl.Date})
    live = opps.filter(~pl.col("is_deleted") & pl.col("is_closed")).join(anchors, on="owner_id")
    days = (pl.col("created_date") - pl.col("anchor")).dt.total_days()
    live = live.with_columns(
        days=days,
        p=pl.when(pl.col("exposed")).then(pl.col("p1")).otherwise(pl.col("p0")),
        won=pl.when(pl.col("exposed")).then(pl.col("won1")).otherwise(pl.col("won0")).cast(pl.Int64),
        lift=pl.when(pl.col("exposed")).then(pl.col("p1") - pl.col("p0")).otherwise(0.0),
    )
    base = live.filter((pl.col("days") >= -d.baseline_days) & (pl.col("days") < 0)).group_by("owner_id").agg(
        base_closed=pl.len(), base_won=pl.col("won").sum(), base_p=pl.col("p").mean())
    post = live.filter((pl.col("days") >= 0) & (pl.col("days") < d.window_days)).group_by("owner_id").agg(
        post_closed=pl.len(), post_won=pl.col("won").sum(), post_p=pl.col("p").mean(), lift=pl.col("lift").mean())
    both = base.join(post, on="owner_id", how="full", coalesce=True).fill_null(0)
    return {r["owner_id"]: r for r in both.to_dicts()}


def one_run(scenario: str, seed: int, reps: int, months: int, replicates: int,
            merge: tuple[int, int]) -> dict[str, Any]:
    """Measure one org's drill-down; return its teams' and reps' intervals beside their truths."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "org"
        simulate(folder, reps=reps, months=months, seed=seed, scenario=scenario)
        truth = json.loads((folder / "truth.json").read_text())
        opps = pl.read_parquet(folder / "truth_opportunities.parquet")
        region_of = dict(pl.read_csv(folder / "truth_reps.csv").select("user_id", "region").iter_rows())
        con = connect(Path(tmp) / "w.duckdb")
        ingest_folder(folder, con)
        link(con)
        study = Study.model_validate({
            "name": f"{scenario} {seed}",
            "program": {"name": truth["program"]["name"], "activities": [truth["program"]["course_activity_id"]]},
            "isolation": {"bootstrap_replicates": replicates, "seed": seed},
        })
        d = drill(con, study)
        con.disconnect()
    window = d.window_days
    org_truth, _ = window_truth(opps, None, window)
    expected = truth["truth"]["windows"][str(window)]["att_win_rate"]
    if org_truth is None or abs(org_truth - expected) > 1e-12:
        raise AssertionError(f"{scenario} seed {seed}: org truth recomputed {org_truth} ≠ truth.json's {expected}")
    natural = group_rows(d)
    bigger = merged(d, region_of, np.random.default_rng(seed), *merge)
    teams = []
    for r in group_rows(bigger):
        trained = [u for u in d.panel.treated.units if bigger.team_of[u] == r.key]
        true, deals = window_truth(opps, trained, window)
        teams.append({"trained": r.trained_units, "comparison": r.comparison_units, "truth": true, "deals": deals,
                      "whole": "whole comparison group" in r.note, "effect": r.effect,
                      "interval": r.interval})
    truths = rep_truths(d, opps)
    t = d.panel.treated
    mismatched = 0
    for i, unit in enumerate(t.units):
        mine = truths.get(unit, {"base_closed": 0, "base_won": 0, "post_closed": 0, "post_won": 0})
        if (mine["base_closed"], mine["base_won"], mine["post_closed"], mine["post_won"]) != (
                t.base_trials[i], t.base_successes[i], t.post_trials[i], t.post_successes[i]):
            mismatched += 1
    if mismatched:
        raise AssertionError(f"{scenario} seed {seed}: {mismatched} reps' deals differ from the panel's")
    reps_out = []
    for team in sorted(d.groupings["team"].members):
        for r in rep_rows(d, team):
            if r.interval is None:
                continue
            mine = truths[r.key]
            reps_out.append({"interval": r.interval, "change": mine["post_p"] - mine["base_p"],
                             "lift": mine["lift"], "deals": r.trained_deals})
    org = org_row(d)
    return {"scenario": scenario, "seed": seed, "org_truth": org_truth, "org": (org.effect, org.interval),
            "natural_teams": len(natural), "natural_intervals": sum(r.interval is not None for r in natural),
            "natural_trained": [r.trained_units for r in natural], "teams": teams, "reps": reps_out,
            "trained": len(t.units), "comparison": len(d.panel.comparison.units)}


def covers(row: dict[str, Any], key: str = "truth") -> bool:
    """Whether a row's interval holds its truth."""
    lo, hi = row["interval"]
    return bool(lo <= row[key] <= hi)


def widened(row: dict[str, Any]) -> tuple[float, float]:
    """The team's interval with a small-sample correction, for comparison only (the product does not use it).

    Each side's distance from the estimate is multiplied by t(0.975, n − 1) / z(0.975) × √(n / (n − 1)),
    n the team's trained reps: the percentile bootstrap of n clusters estimates the variance with
    divisor n and uses normal tails.
    """
    n, e = row["trained"], row["effect"]
    lo, hi = row["interval"]
    f = float(student_t.ppf(0.975, n - 1) / norm.ppf(0.975) * np.sqrt(n / (n - 1)))
    return e - (e - lo) * f, e + (hi - e) * f


def line(label: str, rows: list[dict[str, Any]]) -> str:
    """One table row: intervals, how many cover, the coverage with its Wilson interval, bias, width, and the what-if."""
    n = len(rows)
    if not n:
        return f"| {label} | 0 | | | | | | |"
    k = sum(covers(r) for r in rows)
    lo, hi = wilson(k, n)
    width = float(np.mean([r["interval"][1] - r["interval"][0] for r in rows]))
    bias = float(np.mean([r["effect"] - r["truth"] for r in rows]))
    sd = float(np.std([(r["effect"] - r["truth"]) / ((r["interval"][1] - r["interval"][0]) / (2 * norm.ppf(0.975)))
                       for r in rows]))
    wide = sum(a <= r["truth"] <= b for r in rows for a, b in [widened(r)])
    return (f"| {label} | {n} | {k} | {100 * k / n:.1f}% ({100 * lo:.1f}–{100 * hi:.1f}%) | "
            f"{bias:+.4f} | {width:.3f} | {sd:.2f} | {100 * wide / n:.1f}% |")


def summary(runs: list[dict[str, Any]]) -> list[str]:
    """The tables for validation/README.md."""
    out = []
    scenarios = list(dict.fromkeys(r["scenario"] for r in runs))
    out += ["| scenario | orgs | trained reps per org | teams of the simulator | with an interval | "
            "largest team (trained reps) | merged teams | with an interval | org interval covers |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for s in scenarios:
        rs = [r for r in runs if r["scenario"] == s]
        natural = sum(r["natural_teams"] for r in rs)
        got = sum(r["natural_intervals"] for r in rs)
        teams = [t for r in rs for t in r["teams"]]
        given = sum(t["interval"] is not None for t in teams)
        org = sum(r["org"][1][0] <= r["org_truth"] <= r["org"][1][1] for r in rs)
        out.append(f"| {s} | {len(rs)} | {np.mean([r['trained'] for r in rs]):.0f} | {natural} | "
                   f"{got} ({100 * got / natural:.1f}%) | {max(max(r['natural_trained']) for r in rs)} | "
                   f"{len(teams)} | {given} ({100 * given / len(teams):.1f}%) | {org} of {len(rs)} |")
    out += ["", "| teams | intervals | cover the team's truth | coverage (95% Wilson interval) | "
            "mean bias | mean width | SD of error ÷ interval's SE | coverage, t-widened (what-if) |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    every = [dict(t, scenario=r["scenario"]) for r in runs for t in r["teams"] if t["interval"] is not None]
    out.append(line("all", every))
    for s in scenarios:
        out.append(line(f"{s}", [t for t in every if t["scenario"] == s]))
    for lo, hi in BANDS:
        label = f"{lo}–{hi} trained reps" if hi < 10**9 else f"{lo}+ trained reps"
        out.append(line(label, [t for t in every if lo <= t["trained"] <= hi]))
    out.append(line("own comparison reps", [t for t in every if not t["whole"]]))
    out.append(line("whole comparison group", [t for t in every if t["whole"]]))
    for s in scenarios:
        out.append(line(f"{s}, whole comparison group", [t for t in every if t["whole"] and t["scenario"] == s]))
    per_org = [[not covers(t) for t in r["teams"] if t["interval"] is not None] for r in runs]
    share = sum(map(sum, per_org)) / max(1, sum(map(len, per_org)))
    out += ["", f"Misses per org: variance {np.var([sum(m) for m in per_org]):.2f} against "
                f"{np.mean([len(m) * share * (1 - share) for m in per_org]):.2f} were the teams' misses independent "
                "(the Wilson intervals assume they are)."]
    reps = [dict(p, truth=p["change"]) for r in runs for p in r["reps"]]
    if reps:
        n = len(reps)
        k = sum(covers(p) for p in reps)
        low, high = wilson(k, n)
        k_lift = sum(covers(p, "lift") for p in reps)
        positive = [p for p in reps if p["lift"] > 0]
        found = sum(p["interval"][0] > 0 for p in positive)
        out += ["", "| reps with an interval | cover their change in expected win rate | coverage (95% Wilson) | "
                "hold their own effect | exclude zero, effect positive | mean width | mean closed deals |",
                "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
                f"| {n} | {k} | {100 * k / n:.1f}% ({100 * low:.1f}–{100 * high:.1f}%) | {100 * k_lift / n:.1f}% | "
                f"{found} of {len(positive)} ({100 * found / max(1, len(positive)):.1f}%) | "
                f"{np.mean([p['interval'][1] - p['interval'][0] for p in reps]):.3f} | "
                f"{np.mean([p['deals'] for p in reps]):.0f} |"]
    return out


def main() -> None:
    """Run the scenarios over the seeds and print the coverage tables."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=25, help="how many seeds (orgs) per scenario")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--reps", type=int, default=500)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--replicates", type=int, default=2000, help="bootstrap replicates (the study's default)")
    parser.add_argument("--merge", type=int, nargs=2, default=(2, 8), metavar=("LOW", "HIGH"),
                        help="teams of the simulator merged per larger team, drawn from LOW..HIGH")
    parser.add_argument("--scenarios", nargs="*", default=["randomised", "selection", "staggered"])
    parser.add_argument("--json", type=Path, help="also write every run's rows to this file")
    parser.add_argument("--tables", type=Path, help="print the tables of the runs a --json file holds, and stop")
    args = parser.parse_args()
    if args.tables:
        print("\n".join(summary(json.loads(args.tables.read_text()))))
        return
    runs = []
    for scenario in args.scenarios:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            start = time.perf_counter()
            r = one_run(scenario, seed, args.reps, args.months, args.replicates, tuple(args.merge))
            runs.append(r)
            given = [t for t in r["teams"] if t["interval"] is not None]
            print(f"{scenario:10} seed {seed:3}: org truth {r['org_truth']:+.4f}, {r['natural_intervals']} of "
                  f"{r['natural_teams']} teams with an interval; merged {len(given)} of {len(r['teams'])}, "
                  f"{sum(covers(t) for t in given)} cover ({time.perf_counter() - start:.0f} s)",
                  file=sys.stderr, flush=True)
    if args.json:
        args.json.write_text(json.dumps(runs))
    print(f"MIN_UNITS = {MIN_UNITS}")
    print("\n".join(summary(runs)))


if __name__ == "__main__":
    main()
