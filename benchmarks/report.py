"""Report benchmark: time and peak memory of `report` on the ingested 1k, 5k and 20k-rep orgs.

Uses the warehouses `benchmarks/ingest.py` leaves in `benchmarks/.data/` (run it first). Each
report runs in its own process (its peak memory is its own), with the default study settings:
three attribution windows, each with a 2,000-replicate cluster bootstrap, and the attribution of
won deals to touches by every model; with ``--method all``, every estimator of the family side by
side as well, each challenged by the placebo tests. ``--no-attribution`` leaves the attribution
out (to time the isolation alone). After the evaluation it writes every file `report` writes, and
times the decision pack (the forecast, computed inside the evaluation, the workbook and the
one-pager) on its own.

    python benchmarks/report.py --reps 1000 5000 20000 [--method all] [--no-attribution]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"


def _child(db: str, course: str, method: str, attribution: str) -> None:
    from training_roi.evaluation import evaluate
    from training_roi.present.answer import write_answer
    from training_roi.present.onepager import write_summary
    from training_roi.present.workbook import write_workbook
    from training_roi.study import Study
    from training_roi.warehouse.connection import connect

    study = Study.model_validate({
        "name": "benchmark", "program": {"name": "Sales Excellence", "activities": [course]},
        "costs": {"participant_time": {"hourly_rate": 60}}, "isolation": {"method": method},
        "attribution": {"enabled": attribution == "on"},
    })
    con = connect(db)
    steps: list[tuple[str, float]] = []
    start, cpu = time.perf_counter(), time.process_time()
    evaluation = evaluate(con, study, progress=lambda what, _: steps.append((what, time.perf_counter())))
    seconds = time.perf_counter() - start
    # The forecast is computed inside the evaluation: its step runs from its progress message to the next.
    at = next(i for i, (what, _) in enumerate(steps) if what.startswith("forecasting"))
    forecast_s = steps[at + 1][1] - steps[at][1] if at + 1 < len(steps) else time.perf_counter() - steps[at][1]
    # The files: what `report` writes besides the evaluation; the decision pack (the workbook and
    # the one-pager) timed on its own.
    with tempfile.TemporaryDirectory() as tmp:
        written = time.perf_counter()
        write_answer(evaluation, Path(tmp))
        files_s = time.perf_counter() - written
        packed = time.perf_counter()
        write_workbook(evaluation, Path(tmp) / "again")
        write_summary(evaluation, Path(tmp) / "again")
        pack_s = time.perf_counter() - packed + forecast_s
    print(json.dumps({
        "seconds": seconds, "cpu_seconds": time.process_time() - cpu, "files_s": files_s, "pack_s": pack_s,
        "forecast_s": forecast_s,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "trained": evaluation.primary.trained_units, "comparison": evaluation.primary.comparison_units,
        "windows": len(evaluation.windows), "replicates": study.isolation.bootstrap_replicates,
    }))


def main() -> None:
    """Run the report on each size and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, nargs="*", default=[1000, 5000, 20000])
    parser.add_argument("--method", choices=["did", "all"], default="did",
                        help="all: every estimator side by side, with the placebo challenges")
    parser.add_argument("--no-attribution", action="store_true", help="time the report without the attribution")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    print("| reps × months | trained / comparison reps | windows × replicates | report (s) | CPU (s) | peak MiB "
          "| files written (s) | decision pack (s) | of which forecast (s) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for reps in args.reps:
        db = DATA / f"bench_{reps}.duckdb"
        truth = DATA / f"org_{reps}x24_s7" / "truth.json"
        if not db.exists() or not truth.exists():
            sys.exit(f"{db} is missing: run benchmarks/ingest.py --reps {reps} first")
        course = json.loads(truth.read_text())["program"]["course_activity_id"]
        attribution = "off" if args.no_attribution else "on"
        out = subprocess.run([sys.executable, __file__, "--child", str(db), course, args.method, attribution],
                             check=True, capture_output=True, text=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {reps:,} × 24 | {r['trained']:,} / {r['comparison']:,} | {r['windows']} × {r['replicates']:,} | "
              f"{r['seconds']:.1f} | {r['cpu_seconds']:.1f} | {r['peak_mib']:,.0f} | {r['files_s']:.1f} | "
              f"{r['pack_s']:.1f} | {r['forecast_s']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
