"""Run a validation's independent simulations in a process pool, printing each as it ends and keeping them.

Shared by the scripts that simulate one org per (scenario, seed): the jobs run in ``workers``
processes, each run's line goes to stderr as it arrives (in submission order), and ``out``, when
given, receives every run as a JSON line, so a long validation can be summarised again without
re-running it. Also the interval the scripts give a coverage (a share of runs) with.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

__all__ = ["orgs_parser", "run_all", "scenario_jobs", "simulated_org", "wilson"]


def orgs_parser(doc: str | None, *, scenarios: Sequence[str], reps: int, months: int) -> argparse.ArgumentParser:
    """The options every script that simulates orgs by scenario and seed takes; the script adds its own."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20, help="how many seeds (orgs) per scenario")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--reps", type=int, default=reps)
    parser.add_argument("--months", type=int, default=months)
    parser.add_argument("--scenarios", nargs="*", default=list(scenarios))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, help="write every run's figures here (JSON lines)")
    return parser


def scenario_jobs(args: argparse.Namespace) -> list[tuple[str, int]]:
    """(scenario, seed) for every scenario and seed the options name."""
    return [(s, seed) for s in args.scenarios for seed in range(args.first_seed, args.first_seed + args.seeds)]


def run_all(one_run: Callable[..., dict[str, Any]], jobs: Sequence[tuple[Any, ...]], *, workers: int,
            out: Path | None, line: Callable[[dict[str, Any]], str]) -> list[dict[str, Any]]:
    """``one_run(*job)`` for every job, ``workers`` at a time; the runs in the jobs' order."""
    runs = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(one_run, *job) for job in jobs]
        for future in futures:
            r = future.result()
            runs.append(r)
            print(line(r), file=sys.stderr, flush=True)
            if out is not None:
                with out.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(r) + "\n")
    return runs


def wilson(successes: int, n: int) -> tuple[float, float]:
    """The 95% Wilson score interval of a binomial share (scipy's)."""
    from scipy.stats import binomtest

    ci = binomtest(successes, n).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def simulated_org(tmp: Path, *, scenario: str, reps: int, months: int, seed: int) -> tuple[Path, Any, dict[str, Any]]:
    """Simulate an org into ``tmp/org``, ingest and link it into ``tmp/w.duckdb``: (folder, connection, truth)."""
    from training_roi.ingest.folder import ingest_folder
    from training_roi.linking import link
    from training_roi.simulate import simulate
    from training_roi.warehouse.connection import connect

    folder = tmp / "org"
    simulate(folder, reps=reps, months=months, seed=seed, scenario=scenario)
    con = connect(tmp / "w.duckdb")
    ingest_folder(folder, con)
    link(con)
    return folder, con, json.loads((folder / "truth.json").read_text())
