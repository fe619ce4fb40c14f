"""Attribution benchmark: journeys and every model on the ingested 1k, 5k and 20k-rep orgs.

Uses the warehouses `benchmarks/ingest.py` leaves in `benchmarks/.data/` (run it first). Each size
runs in its own process (its peak memory is its own) with the default study settings: every LMS
program and the CRM's deal activities as touches, a 180-day lookback, the linear model for the
table, and every model (first touch, last touch, linear, time decay, position based, Markov order
1, Shapley) for the comparison, with the learner split and the lift calibration.

    python benchmarks/attribute.py --reps 1000 5000 20000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"


def _child(db: str, course: str) -> None:
    from training_roi.attribute import Attribution, attribute_study, build_journeys
    from training_roi.measure import CohortRule, cohort
    from training_roi.warehouse.connection import connect

    con = connect(db)
    start, cpu = time.perf_counter(), time.process_time()
    journeys = build_journeys(con, lookback_days=180, named={"Sales Excellence": [course]})
    built = time.perf_counter() - start
    del journeys
    start2 = time.perf_counter()
    since = cohort(con, CohortRule((course,))).first_day
    result = attribute_study(con, Attribution(), program="Sales Excellence", activities=[course], unit="rep",
                             window_days=180, since=since, incremental_revenue=1_000_000.0)
    print(json.dumps({
        "journeys_seconds": built, "seconds": time.perf_counter() - start2,
        "cpu_seconds": time.process_time() - cpu,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "journeys": result.counts["journeys"], "touches": sum(v for k, v in result.counts.items()
                                                               if k.endswith("_touches") and k != "attributed_touches"),
        "attributed": result.counts["attributed_touches"],
    }))


def main() -> None:
    """Run attribution on each size and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, nargs="*", default=[1000, 5000, 20000])
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    print("| reps × months | closed deals | touches | rows of the table | journeys alone (s) | "
          "attribution, all models (s) | peak MiB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for reps in args.reps:
        db = DATA / f"bench_{reps}.duckdb"
        truth = DATA / f"org_{reps}x24_s7" / "truth.json"
        if not db.exists() or not truth.exists():
            sys.exit(f"{db} is missing: run benchmarks/ingest.py --reps {reps} first")
        course = json.loads(truth.read_text())["program"]["course_activity_id"]
        out = subprocess.run([sys.executable, __file__, "--child", str(db), course],
                             check=True, capture_output=True, text=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {reps:,} × 24 | {r['journeys']:,} | {r['touches']:,} | {r['attributed']:,} | "
              f"{r['journeys_seconds']:.1f} | {r['seconds']:.1f} | {r['peak_mib']:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
