"""Ingest scaling benchmark: simulate orgs of 1k, 5k and 20k reps × 24 months, ingest each.

For every size it records the simulated rows, the wall and CPU time of a first ingest (parse,
validate, load, void, link) into a fresh DuckDB file, the same for a second ingest of the same
folder (unchanged files: no source is read again, only the links are made again), for a third
with ``reread`` (every source read again and merged by key), and for an incremental export: 1% of
the records of each CRM object and of the statements (drawn with seed 1; the reports that are
each the whole truth about themselves — costs, surveys, completions, learners — left out), rows
per second, and the peak resident memory of the ingesting process. Each ingest runs in its own
process, so a peak is that run's alone. The calibration figure times a fixed Python loop: shared
machines vary in speed from hour to hour, and it tells which speed the other figures were taken at.

    python benchmarks/ingest.py                 # 1000 5000 20000
    python benchmarks/ingest.py --reps 1000     # one size
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"


def _calibration_ms() -> float:
    """Time of a fixed pure-Python loop: how fast this machine is right now (it varies)."""
    start = time.perf_counter()
    total = 0
    for i in range(3_000_000):
        total += i % 7
    return (time.perf_counter() - start) * 1000


def _child(data_dir: str, db: str, reread: bool) -> None:
    """Ingest ``data_dir`` into ``db`` once; print wall and CPU time and peak memory as JSON."""
    from training_roi.ingest.folder import ingest_folder
    from training_roi.linking import link
    from training_roi.warehouse.connection import connect

    con = connect(db)
    start, cpu = time.perf_counter(), time.process_time()
    info = ingest_folder(data_dir, con, reread=reread)
    link(con)
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)  # the xAPI parsing processes
    rows = sum(s.rows_read for s in info.sources)
    print(json.dumps({
        "seconds": wall, "cpu_seconds": time.process_time() - cpu + workers.ru_utime + workers.ru_stime,
        "rows_read": rows, "peak_mib": usage.ru_maxrss / 1024,
        "sources": {s.source: s.rows_read for s in info.sources}, "ok": info.ok,
        "not_read_again": sum(s.unchanged for s in info.sources),
    }))


def _one_percent(folder: Path, out: Path) -> Path:
    """An incremental export: 1% of the lines of each CRM object and of the statements (seed 1), headers kept."""
    import random
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    rnd = random.Random(1)
    for path in sorted([*folder.glob("crm/*.csv"), *folder.glob("lms/**/*.jsonl")]):
        target = out / path.relative_to(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        with path.open(encoding="utf-8") as fh, target.open("w", encoding="utf-8") as part:
            if path.suffix == ".csv":
                part.write(fh.readline())
            part.writelines(line for line in fh if rnd.random() < 0.01)
    return out


def run(reps: int, months: int, seed: int) -> dict[str, object]:
    """Simulate (once, cached) and measure one size."""
    from orgs import org, org_folder

    fresh = not (org_folder(reps, months, seed) / "truth.json").exists()
    start = time.perf_counter()
    folder = org(reps, months, seed)
    sim_seconds = time.perf_counter() - start if fresh else None
    db = DATA / f"bench_{reps}.duckdb"
    for p in (db, Path(f"{db}.wal")):
        p.unlink(missing_ok=True)
    runs = []
    # A first ingest into a new warehouse, the same folder again, and again reading every source.
    for reread in ("", "", "reread"):
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(folder), str(db), reread],
            check=True, capture_output=True, text=True,
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    result, again, reread_run = runs
    increment = _one_percent(folder, DATA / f"increment_{reps}")
    out = subprocess.run([sys.executable, __file__, "--child", str(increment), str(db), ""],
                         check=True, capture_output=True, text=True)
    one_percent = json.loads(out.stdout.strip().splitlines()[-1])
    if again["not_read_again"] != len(again["sources"]):
        raise SystemExit(f"the unchanged re-ingest read {len(again['sources']) - again['not_read_again']} sources")
    size_mb = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6
    return {
        "reps": reps, "months": months, "seed": seed, "input_mb": round(size_mb, 1),
        "rows_read": result["rows_read"], "sources": result["sources"],
        "simulate_s": None if sim_seconds is None else round(sim_seconds, 1),
        "ingest_s": round(result["seconds"], 1), "ingest_cpu_s": round(result["cpu_seconds"], 1),
        "reingest_s": round(again["seconds"], 1), "reread_s": round(reread_run["seconds"], 1),
        "one_percent_s": round(one_percent["seconds"], 1), "one_percent_rows": one_percent["rows_read"],
        "reread_peak_mib": round(reread_run["peak_mib"]),
        "rows_per_s": round(result["rows_read"] / result["seconds"]), "peak_mib": round(result["peak_mib"]),
        "reingest_peak_mib": round(again["peak_mib"]), "calibration_ms": round(_calibration_ms()),
        "ok": result["ok"] and again["ok"] and reread_run["ok"],
    }


def main() -> None:
    """Run the benchmark and print a Markdown table for benchmarks/README.md."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, nargs="*", default=[1000, 5000, 20000])
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], args.child[1], args.child[2] == "reread")
        return
    DATA.mkdir(exist_ok=True)
    results = []
    for reps in args.reps:
        print(f"… {reps:,} reps × {args.months} months", file=sys.stderr, flush=True)
        results.append(run(reps, args.months, args.seed))
        r = results[-1]
        print(f"  {r['rows_read']:,} rows: ingest {r['ingest_s']} s ({r['ingest_cpu_s']} CPU s), "
              f"re-ingest {r['reingest_s']} s, re-read {r['reread_s']} s, 1% increment {r['one_percent_s']} s, "
              f"peak {r['peak_mib']:,} / {r['reingest_peak_mib']:,} / {r['reread_peak_mib']:,} MiB",
              file=sys.stderr, flush=True)
    meta = {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine()}
    (HERE / "results.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    print("| reps × months | input MB | rows read | ingest + link (s) | CPU (s) | rows/s | peak MiB | "
          "re-ingest, unchanged (s) | ÷ ingest | peak MiB | re-read (s) | peak MiB | 1% increment (s) | ÷ ingest | "
          "calibration (ms) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(f"| {r['reps']:,} × {r['months']} | {r['input_mb']:,} | {r['rows_read']:,} | {r['ingest_s']} | "
              f"{r['ingest_cpu_s']} | {r['rows_per_s']:,} | {r['peak_mib']:,} | {r['reingest_s']} | "
              f"{r['reingest_s'] / r['ingest_s']:.2f} | {r['reingest_peak_mib']:,} | {r['reread_s']} | "
              f"{r['reread_peak_mib']:,} | {r['one_percent_s']} | {r['one_percent_s'] / r['ingest_s']:.2f} | "
              f"{r['calibration_ms']} |")


if __name__ == "__main__":
    main()
