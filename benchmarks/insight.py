"""Insight benchmark: the time and memory of the effect by subgroup, the lesson map, the next lessons and churn risk.

Answers a study twice in processes of their own — without and with ``insight`` — and times the
insight's steps from the evaluation's progress messages ("estimating the effect by subgroup",
"mapping the lessons", "finding each rep's gaps and next lessons", "forecasting which accounts
churn": each runs from its message to the next), on an ingested org. ``--churn`` answers an
account study of a customer-education program (scenario ``customer``). Peak memory is each
process's own (``ru_maxrss``); the attribution and the forecast are left out of both, so the
difference is the insight's.

    python benchmarks/insight.py --warehouse ORG.duckdb --course COURSE_ID --subgroups role manager
    python benchmarks/insight.py --warehouse ORG.duckdb --course DRILLS_ID --lessons
    python benchmarks/insight.py --warehouse ORG.duckdb --course DRILLS_ID --skills ORG/skills.csv
    python benchmarks/insight.py --warehouse CUSTOMER_ORG.duckdb --course ACADEMY_COURSE_ID --churn
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def _child(db: str, course: str, subgroups: list[str], lessons: bool, churn: bool, skills: str | None,
           on: bool) -> None:
    from training_roi.evaluation import evaluate
    from training_roi.study import Study
    from training_roi.warehouse.connection import connect

    program: dict[str, object] = {"name": "Customer Academy" if churn else "Sales Excellence", "activities": [course]}
    if lessons or skills:
        program["completion"] = "lessons"
    insight: dict[str, object] = {"subgroups": subgroups, "lesson_map": lessons, "churn": churn} if on else {}
    if on and skills:
        import polars as pl

        insight["next_lesson"] = {"skills": dict(pl.read_csv(skills).iter_rows())}
    study = Study.model_validate({"name": "benchmark", "program": program, "attribution": {"enabled": False},
                                  "forecast": {"enabled": False}, "insight": insight,
                                  "population": {"unit": "account" if churn else "rep"}})
    con = connect(db)
    steps: list[tuple[str, float]] = []
    start = time.perf_counter()
    evaluate(con, study, progress=lambda what, _: steps.append((what, time.perf_counter())))
    end = time.perf_counter()

    def step(prefix: str) -> float | None:
        at = next((i for i, (what, _) in enumerate(steps) if what.startswith(prefix)), None)
        if at is None:
            return None
        return (steps[at + 1][1] if at + 1 < len(steps) else end) - steps[at][1]

    print(json.dumps({"seconds": end - start, "subgroups_s": step("estimating the effect by subgroup"),
                      "lesson_map_s": step("mapping the lessons"),
                      "next_lesson_s": step("finding each rep's gaps and next lessons"),
                      "churn_s": step("forecasting which accounts churn"),
                      "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main() -> None:
    """Run the study without and with the insight, each in a process of its own, and print both."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", required=True)
    parser.add_argument("--course", required=True, help="the program's course (or the drills' parent) activity id")
    parser.add_argument("--subgroups", nargs="*", default=[])
    parser.add_argument("--lessons", action="store_true", help="a micro-lesson program: map its lessons")
    parser.add_argument("--churn", action="store_true", help="a customer-education program: the accounts' churn risk")
    parser.add_argument("--skills", help="a skill map (activity_id,skill): each rep's next lessons")
    parser.add_argument("--child", choices=("off", "on"))
    args = parser.parse_args()
    if args.child:
        _child(args.warehouse, args.course, args.subgroups, args.lessons, args.churn, args.skills, args.child == "on")
        return
    for mode in ("off", "on"):
        out = subprocess.run([sys.executable, __file__, "--warehouse", args.warehouse, "--course", args.course,
                              "--subgroups", *args.subgroups, *(["--lessons"] if args.lessons else []),
                              *(["--churn"] if args.churn else []),
                              *(["--skills", args.skills] if args.skills else []),
                              "--child", mode], check=True, capture_output=True, text=True)
        print(mode, out.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
