"""Spark: the whole pipeline on PySpark in local mode, beside DuckDB, on the same simulated org.

For one simulated org (simulated once and cached in `benchmarks/.data/`, or a data folder given with
``--data-folder``), each engine runs in a process of its own: the product's ingest, link and the
default study's answer (attribution included), each stage timed for its wall time, the CPU time of
the Python process and its peak resident memory (``VmHWM``, reset before each stage). On Spark the
JVM is a child process of Python and does the work: its CPU time and peak resident memory are read
from its own ``/proc`` entry and shown apart. Starting the session (the JVM) is a stage of its own.

It prints a Markdown table and whether Spark's ``result.json`` equals DuckDB's (floats to 12
significant digits, as the parity test compares them; money and every other field exactly).

    python benchmarks/spark.py [--reps 1000] [--months 24] [--seed 7] [--data-folder FOLDER] [--memory 2g]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
STAGES = ("session", "ingest", "link", "evaluate")


def _status(pid: int | str, field: str) -> float:
    """A memory figure (``VmHWM``, ``VmRSS``) of a process, in MiB (0 when it cannot be read)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _reset_peak(pid: int | str) -> None:
    """Start a process's ``VmHWM`` again from its current resident memory (Linux; skipped where refused)."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far (0 when it cannot be read)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _jvm() -> int | None:
    """The process id of the JVM this Python process started (a java descendant), None before it runs."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            head, tail = (entry / "stat").read_text().rsplit(")", 1)
        except OSError:
            continue
        names[int(entry.name)] = head.split("(", 1)[1]
        parents[int(entry.name)] = int(tail.split()[1])
    mine = {os.getpid()}
    grew = True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in mine} - mine
        mine |= more
        grew = bool(more)
    return next((pid for pid in sorted(mine) if names.get(pid) == "java"), None)


def _session(memory: str, where: Path) -> Any:
    """A Spark session in local mode on two cores, its time zone UTC, its warehouse in ``where``."""
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("training-roi-benchmark")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.warehouse.dir", str(where / "warehouse"))
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={where}")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.memory", memory)
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


def _child(engine: str, folder: Path, work: Path, memory: str) -> None:
    """Run every stage on ``engine`` here; write its result.json to ``work``; print each stage's figures as JSON."""
    import ibis

    from training_roi.evaluation import evaluate
    from training_roi.ingest.folder import ingest_folder
    from training_roi.linking import link
    from training_roi.present.result_json import result_document
    from training_roi.study import Study
    from training_roi.warehouse.connection import connect

    course = json.loads((folder / "truth.json").read_text())["program"]["course_activity_id"] if (
        folder / "truth.json").exists() else "https://lms.example.com/xapi/activities/course/sales-excellence"
    study = Study.model_validate({"name": "Sales Excellence", "program": {"activities": [course]}})
    held: dict[str, Any] = {}
    figures: dict[str, dict[str, float]] = {}

    def stage(name: str, run: Callable[[], None]) -> None:
        jvm = _jvm()
        _reset_peak("self")
        if jvm is not None:
            _reset_peak(jvm)
        start, cpu, jvm_cpu = time.perf_counter(), time.process_time(), _cpu_seconds(jvm) if jvm else 0.0
        run()
        jvm = jvm or _jvm()
        figures[name] = {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu,
                         "peak_mib": _status("self", "VmHWM"),
                         "jvm_cpu_seconds": _cpu_seconds(jvm) - jvm_cpu if jvm else 0.0,
                         "jvm_peak_mib": _status(jvm, "VmHWM") if jvm else 0.0}
        print(json.dumps({"engine": engine, "stage": name, **figures[name]}), file=sys.stderr, flush=True)

    def start() -> None:
        held["con"] = (ibis.pyspark.connect(_session(memory, work / "spark")) if engine == "spark"
                       else connect(work / "roi.duckdb"))

    def answer() -> None:
        held["document"] = result_document(evaluate(held["con"], study))

    stage("session", start)
    stage("ingest", lambda: held.__setitem__("ingest", ingest_folder(folder, held["con"])))
    stage("link", lambda: held.__setitem__("link", link(held["con"])))
    stage("evaluate", answer)
    (work / f"{engine}.json").write_text(held["document"], encoding="utf-8")
    print(json.dumps(figures))


def _run(engine: str, folder: Path, work: Path, memory: str) -> dict[str, dict[str, float]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE.parent / "src"),
                                                                     os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, __file__, "--child", engine, str(folder), str(work), memory],
                          check=True, stdout=subprocess.PIPE, text=True, env=env)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def plain_floats(value: object) -> object:
    """A result document with every float to 12 significant digits, everything else as is.

    Spark adds the few floating-point sums it does in the engine partition by partition, so their
    last bits may depend on the order of the partial sums; money is summed as exact decimals.
    """
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, dict):
        return {k: plain_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_floats(v) for v in value]
    return value


def differences(duck: object, spark: object, path: str = "") -> list[str]:
    """Where two result documents differ, as ``path: DuckDB's value != Spark's``."""
    if isinstance(duck, dict) and isinstance(spark, dict):
        return [d for k in sorted(duck.keys() | spark.keys())
                for d in (differences(duck.get(k), spark.get(k), f"{path}.{k}") if k in duck and k in spark
                          else [f"{path}.{k}: only on {'DuckDB' if k in duck else 'Spark'}"])]
    if isinstance(duck, list) and isinstance(spark, list) and len(duck) == len(spark):
        return [d for i, (a, b) in enumerate(zip(duck, spark, strict=True)) for d in differences(a, b, f"{path}[{i}]")]
    return [] if duck == spark else [f"{path}: {duck!r} != {spark!r}"]


def table(duck: dict[str, dict[str, float]], spark: dict[str, dict[str, float]]) -> str:
    """The Markdown table: each stage on DuckDB and on Spark (its Python process, then its JVM)."""
    lines = ["| stage | DuckDB wall (s) | DuckDB CPU (s) | DuckDB peak MiB | Spark wall (s) | Spark ÷ DuckDB "
             "| Python CPU (s) | Python peak MiB | JVM CPU (s) | JVM peak MiB |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name in STAGES:
        d, s = duck[name], spark[name]
        ratio = f"{s['seconds'] / d['seconds']:.0f}" if name != "session" and d["seconds"] > 0 else ""
        lines.append(f"| {name} | {d['seconds']:.1f} | {d['cpu_seconds']:.1f} | {d['peak_mib']:,.0f} | "
                     f"{s['seconds']:.1f} | {ratio} | {s['cpu_seconds']:.1f} | {s['peak_mib']:,.0f} | "
                     f"{s['jvm_cpu_seconds']:.1f} | {s['jvm_peak_mib']:,.0f} |")
    total = [sum(r[name]["seconds"] for name in STAGES[1:]) for r in (duck, spark)]
    lines.append(f"| ingest + link + evaluate | {total[0]:.1f} | | | {total[1]:.1f} | {total[1] / total[0]:.0f} "
                 "| | | | |")
    return "\n".join(lines)


def main() -> None:
    """Run both engines on one org; print the table and whether the answers are the same."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data-folder", type=Path, help="a data folder to use instead of simulating")
    parser.add_argument("--memory", default="2g", help="the Spark driver's memory (local mode: the whole JVM)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        engine, folder, work, memory = args.child
        _child(engine, Path(folder), Path(work), memory)
        return
    if args.data_folder is not None:
        folder = args.data_folder
    else:
        from orgs import org

        folder = org(args.reps, args.months, args.seed)
    print(f"\n### {folder.name}\n", flush=True)
    with tempfile.TemporaryDirectory(prefix="spark-") as tmp:
        work = Path(tmp)
        duck = _run("duckdb", folder, work, args.memory)
        spark = _run("spark", folder, work, args.memory)
        documents = [json.loads((work / f"{engine}.json").read_text()) for engine in ("duckdb", "spark")]
    print(table(duck, spark))
    found = differences(plain_floats(documents[0]), plain_floats(documents[1]))
    print(f"\nresult.json on Spark equals DuckDB's: {not found}"
          + (f" ({len(found)} fields differ: {'; '.join(found[:10])})" if found else ""), flush=True)


if __name__ == "__main__":
    main()
