"""Coverage check: how often each subgroup's interval covers that subgroup's true effect (by region or by tenure).

Scenario ``heterogeneous``: the program's effect on the log-odds of winning differs by region (none
in North America - West, most in EMEA) and reps self-select by skill. For each seed, simulate an
org (known truth per region), ingest and link it, and answer a study with ``insight.subgroups:
[role]`` as ``training-roi report`` does: the effect on the trained (ATT) and on the never-trained
(ATU) of every region from the doubly robust subgroup learner on the headline's windows (each rep's
6-month baseline and 180 days from its completion, or its drawn date), compared with the
simulator's expected effects (mean of p1 − p0 over the region's
deals: the trained reps' deals 1 to 180 days after training, the never-trained reps' deals from the
roll-out on). Prints one line per run and a summary table for validation/README.md.

With ``--by tenure``, scenario ``heterogeneous_tenure``: the effect differs by the rep's tenure at
training (under 1 year most, 3 years and over none), and the study asks for ``subgroups: [tenure]``.

    python validation/subgroups.py --seeds 10 --reps 1500
    python validation/subgroups.py --seeds 10 --reps 3000 --by tenure
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from training_roi import Evaluation, Study, evaluate
from training_roi.ingest.folder import ingest_folder
from training_roi.linking import link
from training_roi.simulate import simulate
from training_roi.warehouse.connection import connect

_WORLDS = {"role": ("heterogeneous", "regions"), "tenure": ("heterogeneous_tenure", "bands")}
"""Per grouping: the scenario whose effect differs by it, and the truth's section of its groups."""


def one_run(seed: int, reps: int, months: int, by: str = "role") -> list[dict[str, object]]:
    """One org: per subgroup, the truth, the estimates and whether each interval covers."""
    scenario, section = _WORLDS[by]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "org"
        simulate(folder, reps=reps, months=months, seed=seed, scenario=scenario)
        truth = json.loads((folder / "truth.json").read_text())
        con = connect(Path(tmp) / "w.duckdb")
        ingest_folder(folder, con)
        link(con)
        study = Study.model_validate({
            "name": "who benefits", "program": {"name": truth["program"]["name"],
                                                "activities": [truth["program"]["course_activity_id"]]},
            "isolation": {"seed": seed}, "attribution": {"enabled": False}, "forecast": {"enabled": False},
            "insight": {"subgroups": [by], "baseline_thirds": False}})
        answer = evaluate(con, study)
        con.disconnect()
    assert isinstance(answer, Evaluation) and answer.subgroups is not None
    result = answer.subgroups.effects
    groups = {(v["role_id"] if by == "role" else name): (name, v) for name, v in truth["subgroups"][section].items()}
    out = []
    for row in result.table.filter(pl.col("variable") == by).iter_rows(named=True):
        name, t = groups[row["level"]]
        line: dict[str, object] = {"seed": seed, "group": name, "differ_p": result.differ[by]["p_value"]}
        for kind in ("att", "atu"):
            true = t[f"{kind}_win_rate_expected"]
            est = row[f"{kind}_estimate"]
            line |= {f"{kind}_true": true, f"{kind}_est": est,
                     f"{kind}_covers": row[f"{kind}_low"] <= true <= row[f"{kind}_high"],
                     f"{kind}_sim_covers": row[f"{kind}_sim_low"] <= true <= row[f"{kind}_sim_high"],
                     f"{kind}_width": row[f"{kind}_high"] - row[f"{kind}_low"]}
        out.append(line)
    return out


def main() -> None:
    """Run the seeds and print the lines and the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--reps", type=int, default=1500)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--by", choices=sorted(_WORLDS), default="role")
    args = parser.parse_args()
    rows: list[dict[str, object]] = []
    for seed in range(1, args.seeds + 1):
        t0 = time.perf_counter()
        got = one_run(seed, args.reps, args.months, args.by)
        rows += got
        print(f"seed {seed}: {time.perf_counter() - t0:.0f} s; " + "; ".join(
            f"{r['group']}: ATT {r['att_est']:+.3f} (true {r['att_true']:+.3f}) "
            f"{'✓' if r['att_covers'] else '✗'}" for r in got), flush=True)
    f = pl.DataFrame(rows)
    print(f"\n{args.seeds} orgs of {args.reps:,} reps × {args.months} months, 95% intervals:\n")
    name = "region" if args.by == "role" else args.by
    print(f"| {name} | true ATT (mean) | estimate (mean) | pointwise covers | simultaneous covers | true ATU (mean) | "
          "estimate (mean) | pointwise covers |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for group in f["group"].unique(maintain_order=True):
        g = f.filter(pl.col("group") == group)
        print(f"| {group} | {g['att_true'].mean():+.4f} | {g['att_est'].mean():+.4f} | "
              f"{int(g['att_covers'].sum())}/{g.height} | {int(g['att_sim_covers'].sum())}/{g.height} | "
              f"{g['atu_true'].mean():+.4f} | {g['atu_est'].mean():+.4f} | {int(g['atu_covers'].sum())}/{g.height} |")
    every = f.group_by("seed").agg(pl.col("att_sim_covers").all())
    print(f"\nAll: ATT pointwise {f['att_covers'].mean():.1%}, ATU pointwise {f['atu_covers'].mean():.1%}; "
          f"simultaneous band covering every subgroup at once {every['att_sim_covers'].mean():.1%} of orgs; "
          f"differences between subgroups established (p < 0.05) in "
          f"{int((f.group_by('seed').agg(pl.col('differ_p').first())['differ_p'] < 0.05).sum())} of {args.seeds} "
          f"orgs; mean interval width {np.mean(f['att_width'].to_numpy()):.4f}.")


if __name__ == "__main__":
    main()
