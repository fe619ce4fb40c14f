"""Speed against the references: the product's steps beside two plain scripts of the same model, in one sitting.

For one simulated org size (simulated once and cached in `benchmarks/.data/`, or a data folder
given with ``--data-folder``), every step runs in a process of its own, ``--repeat`` times (the
median is reported), and records wall time, CPU time (its own and its worker processes') and
peak resident memory (``VmHWM``):

* DuckDB's own load of every file (``CREATE TABLE AS read_csv / read_json``), unvalidated;
* the product's ingest (parse, validate, quarantine, load, voiding, link);
* the product's cold files → answer: ingest, then the default report, with every file it writes;
* the product's warm report on the ingested warehouse: default without the attribution, default,
  and ``--method all``;
* the warm default report with one assumption changed (the gross margin, another in each round),
  after the default study kept its measurements (:mod:`training_roi.evaluation.stages`), as
  ``training-roi report`` keeps them beside the warehouse; its result.json is checked against a
  fresh evaluation of the same study that reuses nothing;
* the pandas reference (`reference_pandas.py`) and the DuckDB reference (`reference_duckdb.py`).

It prints a Markdown table with each product step's ratio to each reference, checks that both
references wrote the same figures, and sets the product's headline figures beside them.

    python benchmarks/speed.py --reps 1000 20000 [--repeat 3] [--data-folder FOLDER] [--steps STEP ...]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import runpy
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
STEPS = ("duckdb load", "ingest", "cold files → answer", "warm report, no attribution", "warm report",
         "warm report, margin changed", "warm report --method all", "pandas reference", "DuckDB reference")
CHANGED = "warm report, margin changed"
PRIME = "prime the kept measurements"
FRESH = "fresh report, margin changed"



def _duckdb_load(folder: Path, db: Path) -> None:
    import duckdb

    con = duckdb.connect(str(db))
    for i, path in enumerate(sorted(folder.rglob("*"))):
        if path.suffix == ".csv":
            con.execute(f"CREATE TABLE t{i} AS SELECT * FROM read_csv(?, header = true)", [str(path)])
        elif path.suffix == ".jsonl":
            con.execute(f"CREATE TABLE t{i} AS SELECT * FROM read_json(?, format = 'newline_delimited', "
                        "ignore_errors = true)", [str(path)])
    con.close()


def _ingest(folder: Path, db: Path) -> None:
    from training_roi.ingest.folder import ingest_folder
    from training_roi.linking import link
    from training_roi.warehouse.connection import connect

    con = connect(str(db))
    ingest_folder(str(folder), con)
    link(con)


def _report(db: Path, course: str, method: str, attribution: bool, out: Path, *, margin: float = 1.0,
            stages: Path | None = None) -> None:
    """The default study of the program (its cost lines, every default setting), answered and written.

    ``margin``: its gross margin; ``stages``: a folder of kept measurements it reuses and adds to,
    as the command line's beside the warehouse.
    """
    from training_roi.cli.answers import product_fingerprint, warehouse_version
    from training_roi.evaluation import evaluate
    from training_roi.evaluation.stages import StageStore, kept_stages
    from training_roi.present.answer import write_answer
    from training_roi.study import Study
    from training_roi.warehouse.connection import connect

    study = Study.model_validate({"name": "Sales Excellence", "program": {"activities": [course]},
                                  "isolation": {"method": method}, "attribution": {"enabled": attribution},
                                  "value": {"gross_margin": margin}})
    version = json.dumps([warehouse_version(db), product_fingerprint()])
    with kept_stages(StageStore(stages, version) if stages is not None else None):
        evaluation = evaluate(connect(str(db)), study)
        write_answer(evaluation, out)


def _child(step: str, folder: Path, db: Path, course: str, out: Path) -> None:
    """Run one step here; print its wall and CPU time and peak memory as JSON."""
    start, cpu = time.perf_counter(), time.process_time()
    if step == "duckdb load":
        _duckdb_load(folder, db)
    elif step == "ingest":
        _ingest(folder, db)
    elif step == "cold files → answer":
        _ingest(folder, db)
        _report(db, course, "did", True, out)
    elif step in (CHANGED, PRIME, FRESH):
        margin = float(os.environ.get("SPEED_MARGIN", "1"))
        _report(db, course, "did", True, out, margin=margin, stages=out.parent / "stages" if step != FRESH else None)
    elif step.startswith("warm report"):
        _report(db, course, "all" if step.endswith("all") else "did", "no attribution" not in step, out)
    else:
        script = HERE / ("reference_pandas.py" if step.startswith("pandas") else "reference_duckdb.py")
        sys.argv = [str(script), str(folder), "--course", course, "--out", str(out / "reference.json")]
        with open(os.devnull, "w") as quiet:
            stdout, sys.stdout = sys.stdout, quiet
            try:
                runpy.run_path(str(script), run_name="__main__")
            finally:
                sys.stdout = stdout
    from statements import _peak_mib  # this benchmark folder's: VmHWM, the process's own peak

    workers = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({"seconds": time.perf_counter() - start,
                      "cpu_seconds": time.process_time() - cpu + workers.ru_utime + workers.ru_stime,
                      "peak_mib": _peak_mib()}))


def _run(step: str, folder: Path, db: Path, course: str, out: Path, margin: float = 1.0) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE.parent / "src"),
                                                                     os.environ.get("PYTHONPATH")])),
           "SPEED_MARGIN": repr(margin)}
    done = subprocess.run([sys.executable, __file__, "--child", step, str(folder), str(db), course, str(out)],
                          check=True, capture_output=True, text=True, env=env)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _folder(reps: int, given: Path | None) -> Path:
    if given is not None:
        return given
    from orgs import org

    return org(reps)


def _course(folder: Path) -> str:
    truth = folder / "truth.json"
    if truth.exists():
        return str(json.loads(truth.read_text())["program"]["course_activity_id"])
    return "https://lms.example.com/xapi/activities/course/sales-excellence"


def measure(folder: Path, repeat: int, steps: tuple[str, ...] = STEPS,
            ingested: Path | None = None) -> dict[str, Any]:
    """Every step ``repeat`` times, in rounds (each round runs every step once); medians, and the figures.

    ``ingested``: a warehouse of ``folder`` ingested beforehand, which the warm reports read
    (they only read it) instead of the ingest step's.
    """
    course = _course(folder)
    runs: dict[str, list[dict[str, float]]] = {s: [] for s in steps}
    with tempfile.TemporaryDirectory(prefix="speed-") as tmp:
        work = Path(tmp)
        warehouse = ingested or work / "warm.duckdb"
        outputs = {s: work / f"out{i}" for i, s in enumerate(steps)}
        for round_ in range(repeat):
            for step in steps:
                out = outputs[step]
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir()
                fresh = work / "fresh.duckdb"
                for p in (fresh, Path(f"{fresh}.wal")):
                    p.unlink(missing_ok=True)
                if step.startswith("warm") and not warehouse.exists():
                    raise SystemExit("the warm reports read the warehouse of the ingest step: measure it too")
                db = warehouse if step.startswith("warm") else fresh
                if step == CHANGED and round_ == 0:
                    (work / "primed").mkdir()
                    _run(PRIME, folder, db, course, work / "primed")  # the default study, as analysed before
                margin = 0.6 + 0.01 * round_  # another change in each round: nothing of the last round's is reused
                runs[step].append(_run(step, folder, db, course, out, margin))
                if step == "ingest" and round_ == 0 and ingested is None:
                    fresh.rename(warehouse)  # the warm reports read the first ingest's warehouse
                print(json.dumps({"round": round_ + 1, "step": step, **runs[step][-1]}), file=sys.stderr, flush=True)
        pandas = json.loads((outputs["pandas reference"] / "reference.json").read_text())
        sql = json.loads((outputs["DuckDB reference"] / "reference.json").read_text())
        answer = outputs.get("warm report", Path("-")) / "result.json"
        product = json.loads(answer.read_text()) if answer.exists() else None
        same_as_fresh = None
        if CHANGED in steps:  # the last changed study, evaluated again reusing nothing
            (work / "fresh").mkdir()
            _run(FRESH, folder, warehouse, course, work / "fresh", 0.6 + 0.01 * (repeat - 1))
            same_as_fresh = ((work / "fresh" / "result.json").read_bytes()
                             == (outputs[CHANGED] / "result.json").read_bytes())
    medians = {s: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for s, rs in runs.items()}
    return {"steps": medians, "runs": runs, "references_equal": pandas == sql, "reference": pandas,
            "product": product, "changed_equals_fresh": same_as_fresh}


def table(medians: dict[str, dict[str, float]]) -> str:
    """The Markdown table: each step's median figures, and each product step ÷ each reference."""
    p, d = medians["pandas reference"], medians["DuckDB reference"]
    lines = ["| step | wall (s) | CPU (s) | peak MiB | wall ÷ pandas | wall ÷ DuckDB SQL | peak ÷ pandas "
             "| peak ÷ DuckDB SQL |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for step, r in medians.items():
        lines.append(f"| {step} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} | {r['peak_mib']:,.0f} | "
                     f"{r['seconds'] / p['seconds']:.1f} | {r['seconds'] / d['seconds']:.1f} | "
                     f"{r['peak_mib'] / p['peak_mib']:.1f} | {r['peak_mib'] / d['peak_mib']:.1f} |")
    return "\n".join(lines)


def headline(reference: dict[str, Any], product: dict[str, Any]) -> str:
    """The references' win-rate DiD, incremental revenue and ROI beside the product's (primary window)."""
    ref = reference["kpis"]["win_rate"]
    window = product_window(product)
    kpi = next(k for k in window["kpis"] if k["kpi"] == "win_rate")
    seed = window["revenue"]["seed"]
    return (f"win-rate DiD: references {ref['did'] * 100:+.2f} points [{ref['ci_low'] * 100:+.2f}, "
            f"{ref['ci_high'] * 100:+.2f}], product {kpi['did']['estimate'] * 100:+.2f} points "
            f"[{kpi['did']['ci_low'] * 100:+.2f}, {kpi['did']['ci_high'] * 100:+.2f}]; trained / comparison reps: "
            f"references {reference['trained_reps']:,} / {reference['comparison_reps']:,}, product "
            f"{window['trained_units']:,} / {window['comparison_units']:,}; seed-formula incremental revenue: "
            f"references ${reference['incremental_revenue']:,.0f}, product ${float(seed['estimate']):,.0f}; "
            f"cost: references ${reference['cost']:,.0f}, product ${float(product_cost(product)):,.0f}")


def product_window(product: dict[str, Any]) -> dict[str, Any]:
    """The primary window of a product's result.json."""
    return dict(product["headline"])


def product_cost(product: dict[str, Any]) -> str:
    """The fully loaded cost of a product's result.json."""
    return str(product["costs"]["total"])


def main() -> None:
    """Measure each size and print its table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, nargs="*", default=[1000])
    parser.add_argument("--data-folder", type=Path, help="a data folder to use instead of simulating (one size)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each step; the median is reported")
    parser.add_argument("--json", type=Path, help="write every run's figures here")
    parser.add_argument("--warehouse", type=Path,
                        help="the data folder's warehouse, ingested beforehand: the warm reports read it")
    parser.add_argument("--steps", nargs="*", choices=STEPS, default=list(STEPS),
                        help="only these steps (both references are always run, for the ratios and the check)")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        step, folder, db, course, out = args.child
        _child(step, Path(folder), Path(db), course, Path(out))
        return
    results = {}
    for reps in args.reps if args.data_folder is None else [0]:
        folder = _folder(reps, args.data_folder)
        print(f"\n### {folder.name}\n", flush=True)
        steps = tuple(s for s in STEPS if s in args.steps or s.endswith("reference"))
        r = measure(folder, args.repeat, steps, args.warehouse)
        results[folder.name] = {k: v for k, v in r.items() if k != "product"}
        print(table(r["steps"]))
        print(f"\nreferences' figures equal: {r['references_equal']}")
        if r["changed_equals_fresh"] is not None:
            print(f"the changed study's result.json equals a fresh evaluation's: {r['changed_equals_fresh']}")
        if r["product"] is not None:
            print(headline(r["reference"], r["product"]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
