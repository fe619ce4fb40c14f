"""Coverage check: how often each region's interval covers that region's true effect.

Scenario ``heterogeneous``: the program's effect on the log-odds of winning differs by region (none
in North America - West, most in EMEA) and reps self-select by skill. For each seed, simulate an
org (known truth per region), ingest and link it, and answer a study with ``insight.subgroups:
[role]`` as ``training-roi report`` does: the effect on the trained (ATT) and on the never-trained
(ATU) of every region from the doubly robust subgroup learner on the headline's windows (each rep's
6-month baseline and 180 days from its completion, or its drawn date), compared with the
simulator's expected effects (mean of p1 − p0 over the region's
deals: the trained reps' deals 1 to 180 days after training, the never-trained reps' deals from the
roll-out on). Prints one line per run and a summary table for validation/README.md.

    python validation/subgroups.py --seeds 10 --reps 1500
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


def one_run(seed: int, reps: int, months: int) -> list[dict[str, object]]:
    """One org: per region, the truth, the estimates and whether each interval covers."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "org"
        simulate(folder, reps=reps, months=months, seed=seed, scenario="heterogeneous")
        truth = json.loads((folder / "truth.json").read_text())
        con = connect(Path(tmp) / "w.duckdb")
        ingest_folder(folder, con)
        link(con)
        study = Study.model_validate({
            "name": "who benefits", "program": {"name": truth["program"]["name"],
                                                "activities": [truth["program"]["course_activity_id"]]},
            "isolation": {"seed": seed}, "attribution": {"enabled": False}, "forecast": {"enabled": False},
            "insight": {"subgroups": ["role"], "baseline_thirds": False}})
        answer = evaluate(con, study)
        con.disconnect()
    assert isinstance(answer, Evaluation) and answer.subgroups is not None
    result = answer.subgroups.effects
    regions = {v["role_id"]: (name, v) for name, v in truth["subgroups"]["regions"].items()}
    out = []
    for row in result.table.filter(pl.col("variable") == "role").iter_rows(named=True):
        name, t = regions[row["level"]]
        line: dict[str, object] = {"seed": seed, "region": name, "differ_p": result.differ["role"]["p_value"]}
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
    args = parser.parse_args()
    rows: list[dict[str, object]] = []
    for seed in range(1, args.seeds + 1):
        t0 = time.perf_counter()
        got = one_run(seed, args.reps, args.months)
        rows += got
        print(f"seed {seed}: {time.perf_counter() - t0:.0f} s; " + "; ".join(
            f"{r['region']}: ATT {r['att_est']:+.3f} (true {r['att_true']:+.3f}) "
            f"{'✓' if r['att_covers'] else '✗'}" for r in got), flush=True)
    f = pl.DataFrame(rows)
    print(f"\n{args.seeds} orgs of {args.reps:,} reps × {args.months} months, 95% intervals:\n")
    print("| region | true ATT (mean) | estimate (mean) | pointwise covers | simultaneous covers | true ATU (mean) | "
          "estimate (mean) | pointwise covers |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for region in f["region"].unique(maintain_order=True):
        g = f.filter(pl.col("region") == region)
        print(f"| {region} | {g['att_true'].mean():+.4f} | {g['att_est'].mean():+.4f} | "
              f"{int(g['att_covers'].sum())}/{g.height} | {int(g['att_sim_covers'].sum())}/{g.height} | "
              f"{g['atu_true'].mean():+.4f} | {g['atu_est'].mean():+.4f} | {int(g['atu_covers'].sum())}/{g.height} |")
    every = f.group_by("seed").agg(pl.col("att_sim_covers").all())
    print(f"\nAll: ATT pointwise {f['att_covers'].mean():.1%}, ATU pointwise {f['atu_covers'].mean():.1%}; "
          f"simultaneous band covering every region at once {every['att_sim_covers'].mean():.1%} of orgs; "
          f"differences between regions established (p < 0.05) in "
          f"{int((f.group_by('seed').agg(pl.col('differ_p').first())['differ_p'] < 0.05).sum())} of {args.seeds} "
          f"orgs; mean interval width {np.mean(f['att_width'].to_numpy()):.4f}.")


if __name__ == "__main__":
    main()
