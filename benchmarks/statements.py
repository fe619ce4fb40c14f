"""Memory and time of reading one large xAPI statements file, in each of the forms an LMS exports.

An LMS or LRS export of statements comes as JSON lines, as one JSON array, or as an LRS page
(``{"statements": [...], "more": ...}``). This builds one file of each form of about ``--mb``
megabytes from the statements of the simulated 1,000-rep org (copied with fresh ids until the
size is reached, so every statement is distinct), then, each in a process of its own, reads it
with ``read_xapi`` and ingests it into a new DuckDB warehouse (a data folder holding only that
file). It records the file's size, wall time, statements read and loaded, the resident memory
of the process once the product is imported (before any statement is read) and its peak.

    .venv/bin/python benchmarks/statements.py               # about 200 MB per form
    .venv/bin/python benchmarks/statements.py --mb 50
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"
FORMS = ("jsonl", "array", "array-indented", "page")


def _source_statements() -> Path:
    """The statements of the simulated 1,000-rep org (simulated once and cached, as benchmarks/ingest.py does)."""
    from orgs import org

    return org(1000) / "lms" / "statements.jsonl"


def build(form: str, mb: int) -> Path:
    """Write (once, cached) a data folder whose only file is ``mb`` MB of statements in ``form``."""
    folder = DATA / f"statements_{form}_{mb}mb"
    name = "statements.jsonl" if form == "jsonl" else "statements.json"
    path = folder / "lms" / name
    if path.exists():
        return folder
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for line in _source_statements().read_bytes().splitlines():
        try:
            lines.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            continue  # the simulated export's deliberately malformed lines: not wanted here
    target, written, copy = mb * 1_000_000, 0, 0
    option = orjson.OPT_INDENT_2 if form == "array-indented" else 0
    with path.open("wb") as fh:
        fh.write({"jsonl": b"", "page": b'{"statements": ['}.get(form, b"["))
        first = True
        while written < target:
            for statement in lines:
                if type(statement) is dict and "id" in statement:
                    statement = {**statement, "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{copy}:{statement['id']}"))}
                text = orjson.dumps(statement, option=option)
                piece = text + b"\n" if form == "jsonl" else (b"" if first else b",\n") + text
                fh.write(piece)
                written += len(piece)
                first = False
                if written >= target:
                    break
            copy += 1
        fh.write({"jsonl": b"", "page": b'], "more": ""}'}.get(form, b"]"))
    return folder


def _peak_mib() -> float:
    """Return this process's peak resident memory (``VmHWM``: a child does not inherit it, as ``ru_maxrss``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(mode: str, folder: str) -> None:
    """Read (``read``) or ingest (``ingest``) one folder's statements; print the figures as JSON."""
    from training_roi.ingest.folder import ingest_folder
    from training_roi.ingest.xapi import read_xapi
    from training_roi.warehouse.connection import connect

    base = _peak_mib()
    files = sorted(p for p in (Path(folder) / "lms").iterdir())
    start = time.perf_counter()
    if mode == "read":
        batch = read_xapi([(p, f"lms/{p.name}") for p in files])
        read, loaded = batch.rows_read, batch.rows_loaded
    else:
        db = Path(folder) / "bench.duckdb"
        for p in (db, Path(f"{db}.wal")):
            p.unlink(missing_ok=True)
        info = ingest_folder(folder, connect(str(db)))
        (xapi,) = [s for s in info.sources if s.source == "xapi"]
        read, loaded = xapi.rows_read, xapi.rows_loaded
    seconds = time.perf_counter() - start
    peak = _peak_mib()
    print(json.dumps({"seconds": seconds, "base_mib": base, "peak_mib": peak, "read": read,
                      "loaded": loaded}))


def main() -> None:
    """Build the files, measure each form read and ingested, print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--forms", nargs="*", default=list(FORMS), choices=FORMS)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    DATA.mkdir(exist_ok=True)
    rows = []
    for form in args.forms:
        print(f"… {form}", file=sys.stderr, flush=True)
        folder = build(form, args.mb)
        size = sum(p.stat().st_size for p in (folder / "lms").iterdir()) / 2**20
        for mode in ("read", "ingest"):
            out = subprocess.run([sys.executable, __file__, "--child", mode, str(folder)],
                                 check=True, capture_output=True, text=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append((form, mode, size, r))
            print(f"  {mode}: {r['read']:,} statements in {r['seconds']:.1f} s, peak {r['peak_mib']:,.0f} MiB",
                  file=sys.stderr, flush=True)
    print("| form | step | file MiB | statements read | loaded | wall (s) | MiB at start | peak MiB | peak ÷ file "
          "| (peak − start) ÷ file |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for form, mode, size, r in rows:
        print(f"| {form} | {mode} | {size:,.0f} | {r['read']:,} | {r['loaded']:,} | {r['seconds']:.1f} | "
              f"{r['base_mib']:,.0f} | {r['peak_mib']:,.0f} | {r['peak_mib'] / size:.1f}× | "
              f"{(r['peak_mib'] - r['base_mib']) / size:.1f}× |")


if __name__ == "__main__":
    main()
