"""Mutated inputs: every file the product reads must load, quarantine or be refused, never crash or lose a row.

A small simulated org gives one clean file per source (each CRM object, the LMS reports, surveys,
costs, xAPI statements as JSON lines, as an array and as an LRS page), and a study file using
most settings.
Each trial takes one of them, applies a few random mutations — bytes flipped, inserted or cut,
lines dropped, repeated or shuffled, header names swapped, cells replaced by hostile values
(``NaN``, ``1e308``, ``=HYPERLINK(…)``, a long text, a BOM, a quote), JSON values replaced by
hostile ones (``NaN``, ``1e999``, 3,000 nested lists, a repeated key), the file re-encoded
(latin-1, UTF-16), line ends changed — and reads it as the ingest does (a study as ``report``
loads it). A trial passes when the reader either refuses the whole file with the product's own
error, or returns a batch whose records add up: read = loaded + quarantined + duplicates (a
study: it loads, or is refused with its message). Anything else is a crash, kept with its input.

    .venv/bin/python validation/fuzz.py --trials 10000            # the campaign
    .venv/bin/python validation/fuzz.py --trials 300 --seed 1     # a quick one

The test suite replays a fixed set of trials (``tests/ingest/test_fuzz.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time
import traceback
import zoneinfo
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from training_roi.errors import TrainingRoiError
from training_roi.ingest.sources import SOURCES, read_source
from training_roi.ingest.xapi import read_xapi
from training_roi.simulate import simulate
from training_roi.study import StudyError, load_study
from training_roi.warehouse.batch import Batch

HOSTILE = ("NaN", "inf", "-inf", "1e308", "-5000", "=HYPERLINK(\"http://x\",\"y\")", "+cmd", "@SUM(1)", "",
           " ", "\ufeff", "\"", "\"\"", ",", "\n", "x" * 5000, "2025-02-30", "2025-03-31T23:30:00+14:00",
           "0x1F", "１２３", "null", "true", "TRUE", "−12", "$1,234.50", "(5)", "\x00", "é", "005000000000001")
"""Values a cell may be replaced with: not finite, out of range, formulas, quotes, BOMs, controls."""


@dataclass(frozen=True)
class Clean:
    """One clean input: the source it belongs to, its file name in a data folder, its bytes."""

    source: str
    rel: str
    data: bytes


STUDY = """\
name: Sales Excellence 2025
timezone: Europe/Paris
currency: USD
program:
  name: Sales Excellence
  activities: ["https://lms.example.com/xapi/activities/course/sales-excellence", CMP-COC-2024]
  completion: CompletedOrPassed
  start: 2024-06-01
population: {unit: rep, departments: [Sales], titles: [Account Executive], exclude: [U9]}
comparison: {design: holdout, holdout_file: holdout.csv, holdout: [U2, U3]}
baseline: {months: 3, anchor: program_start}
windows: {primary_days: 120, sensitivity_days: [90, 365], ramp_days: 14}
kpis: [win_rate, sales_cycle_days, avg_won_deal_size]
headline_kpi: win_rate
threshold: {min_relative_change: 0.1}
value: {gross_margin: 0.7}
costs:
  programs: [Sales Excellence]
  participant_time: {hourly_rate: 50, hourly_rate_by_role: {Account Executive: 60}, minutes_per_learner: 90}
isolation: {method: did, bootstrap_replicates: 500, confidence: 0.9, seed: 11}
"""
"""A study using most settings, with a holdout file beside it: the clean input of the study trials."""


def clean_inputs(folder: Path, *, statements: int = 60) -> list[Clean]:
    """A small simulated org's files, one per source (xAPI as JSON lines, an array, a page), and a study."""
    simulate(folder, reps=12, months=6, seed=5, scenario="selection")
    out = []
    for name, spec in SOURCES.items():
        path = folder / spec.files[0]
        if path.is_file():
            lines = path.read_bytes().splitlines(keepends=True)[:80]
            out.append(Clean(name, spec.files[0], b"".join(lines)))
    xapi = (folder / "lms" / "statements.jsonl").read_bytes().splitlines(keepends=True)[:statements]
    out.append(Clean("xapi", "lms/statements.jsonl", b"".join(xapi)))
    array = b"[" + b",\n".join(line.rstrip(b"\n") for line in xapi) + b"]"
    out.append(Clean("xapi", "lms/statements.json", array))
    page = b'{"statements": ' + array + b', "more": "/xapi/statements?more=2"}'
    out.append(Clean("xapi", "lms/page.json", page))
    out.append(Clean("study", "study.yaml", STUDY.encode()))
    return out


def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True) or [data]


def _flip(data: bytes, rnd: random.Random) -> bytes:
    if not data:
        return data
    i = rnd.randrange(len(data))
    return data[:i] + bytes([rnd.randrange(256)]) + data[i + 1:]


def _insert(data: bytes, rnd: random.Random) -> bytes:
    i = rnd.randrange(len(data) + 1)
    piece = rnd.choice([b"\xff", b"\x00", b"\xef\xbb\xbf", b",", b"\"", b"\n", b"\r", b"{", b"}", b"[", b"\\",
                        bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 8)))])
    return data[:i] + piece + data[i:]


def _cut(data: bytes, rnd: random.Random) -> bytes:
    return data[:rnd.randrange(len(data) + 1)]


def _drop_line(data: bytes, rnd: random.Random) -> bytes:
    lines = _lines(data)
    del lines[rnd.randrange(len(lines))]
    return b"".join(lines)


def _repeat_line(data: bytes, rnd: random.Random) -> bytes:
    lines = _lines(data)
    i = rnd.randrange(len(lines))
    lines.insert(rnd.randrange(len(lines) + 1), lines[i])
    return b"".join(lines)


def _shuffle_lines(data: bytes, rnd: random.Random) -> bytes:
    lines = _lines(data)
    rest = lines[1:]
    rnd.shuffle(rest)
    return b"".join(lines[:1] + rest)


def _swap_header(data: bytes, rnd: random.Random) -> bytes:
    lines = _lines(data)
    names = lines[0].rstrip(b"\r\n").split(b",")
    if len(names) > 1:
        i, j = rnd.sample(range(len(names)), 2)
        names[i], names[j] = names[j], names[i]
    lines[0] = b",".join(names) + b"\n"
    return b"".join(lines)


def _hostile_cell(data: bytes, rnd: random.Random) -> bytes:
    """Replace one CSV cell, or one JSON string value, by a hostile value."""
    lines = _lines(data)
    i = rnd.randrange(len(lines))
    value = rnd.choice(HOSTILE)
    if lines[i].lstrip().startswith((b"{", b"[")):
        parts = lines[i].split(b'"')
        if len(parts) > 3:
            k = rnd.randrange(1, len(parts) - 1, 2)
            parts[k] = json.dumps(value)[1:-1].encode()
        lines[i] = b'"'.join(parts)
    else:
        cells = lines[i].rstrip(b"\r\n").split(b",")
        cells[rnd.randrange(len(cells))] = (f'"{value}"' if rnd.random() < 0.5 else value).encode("utf-8")
        lines[i] = b",".join(cells) + b"\n"
    return b"".join(lines)


HOSTILE_JSON = (b"NaN", b"Infinity", b"-Infinity", b"1e999", b"123456789012345678901234567890", b"-0",
                b"[" * 3000 + b"]" * 3000, b'{"a": 1, "a": 2}', b"null", b"true", b'""', b"{}", b"[]")
"""JSON values a statement's value may be replaced with: not JSON (NaN), out of range, nested, ambiguous."""
_JSON_VALUE = re.compile(rb':\s*("(?:[^"\\]|\\.)*"|-?\d[\d.eE+-]*|true|false|null)')


def _hostile_json(data: bytes, rnd: random.Random) -> bytes:
    """Replace one JSON value (a string, number or literal after a key) by a hostile one."""
    found = list(_JSON_VALUE.finditer(data))
    if not found:
        return data
    match = rnd.choice(found)
    return data[:match.start(1)] + rnd.choice(HOSTILE_JSON) + data[match.end(1):]


HOSTILE_PATHS = (b"/etc/passwd", b"/proc/self/environ", b"/dev/zero", b"../outside.csv", b"sub/../../outside.csv",
                 b"~/outside.csv", b"file:///etc/passwd", b"/tmp", b"''")
"""Where a study's file setting may be pointed: outside its folder, special files, a folder, nothing."""


def _hostile_path(data: bytes, rnd: random.Random) -> bytes:
    """Point a study's holdout file outside its folder, at a special file or at nothing."""
    return re.sub(rb"holdout_file: [^,}\n]*", b"holdout_file: " + rnd.choice(HOSTILE_PATHS), data, count=1)


def _reencode(data: bytes, rnd: random.Random) -> bytes:
    text = data.decode("utf-8", "replace")
    encoding = rnd.choice(["latin-1", "utf-16", "cp1252"])
    return text.encode(encoding, "replace")


def _line_ends(data: bytes, rnd: random.Random) -> bytes:
    return data.replace(b"\n", rnd.choice([b"\r\n", b"\r", b"\n\n"]))


MUTATIONS: dict[str, Callable[[bytes, random.Random], bytes]] = {
    "flip": _flip, "insert": _insert, "cut": _cut, "drop line": _drop_line, "repeat line": _repeat_line,
    "shuffle lines": _shuffle_lines, "swap header": _swap_header, "hostile cell": _hostile_cell,
    "hostile JSON value": _hostile_json, "hostile path": _hostile_path, "re-encode": _reencode,
    "line ends": _line_ends,
}


def mutate(data: bytes, rnd: random.Random) -> tuple[bytes, list[str]]:
    """One to three random mutations of ``data``; their names."""
    names = [rnd.choice(list(MUTATIONS)) for _ in range(rnd.randint(1, 3))]
    for name in names:
        data = MUTATIONS[name](data, rnd)
    return data, names


@dataclass
class Outcome:
    """One trial: what the reader did, and whether its records add up."""

    verdict: str  # "loaded", "refused" or "crash"
    unaccounted: int = 0
    detail: str = ""
    outside: list[str] = field(default_factory=list)
    """Files opened outside the trial's folder (but for Python's own) while reading a study."""


_OPENED: list[str] | None = None
"""While a study is loaded: every path opened (an audit hook sees each ``open``)."""


def _audit(event: str, args: tuple[object, ...]) -> None:
    if _OPENED is not None and event == "open" and isinstance(args[0], str | bytes | os.PathLike):
        _OPENED.append(os.fsdecode(args[0]))


def _outside(opened: list[str], folder: Path) -> list[str]:
    """The paths of ``opened`` outside ``folder``, the Python installation and the time-zone database."""
    allowed = [folder.resolve(), *{Path(p).resolve() for p in (sys.prefix, sys.base_prefix, *zoneinfo.TZPATH)}]
    return sorted({p for p in opened if not any(Path(p).resolve().is_relative_to(a) for a in allowed)})


def read(clean: Clean, data: bytes, folder: Path) -> Outcome:
    """Read ``data`` as the file of ``clean``'s source; classify what happened."""
    path = folder / clean.rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if clean.source == "study":
        (folder / "holdout.csv").write_text("user_id\nU4\nU5\n", encoding="utf-8")
        global _OPENED
        _OPENED = opened = []
        try:
            load_study(path)
        except StudyError as exc:
            return Outcome("refused", detail=str(exc), outside=_outside(opened, folder))
        except Exception:  # a crash is what the campaign looks for
            return Outcome("crash", detail=traceback.format_exc())
        finally:
            _OPENED = None
        return Outcome("loaded", outside=_outside(opened, folder))
    try:
        batch: Batch = (read_xapi([(path, clean.rel)]) if clean.source == "xapi"
                        else read_source(SOURCES[clean.source], [(path, clean.rel)]))
    except TrainingRoiError as exc:
        return Outcome("refused", detail=str(exc))
    except Exception:  # a crash is what the campaign looks for
        return Outcome("crash", detail=traceback.format_exc())
    whole_file = [q for q in batch.quarantine if q.source_line == 0]
    accounted = batch.rows_loaded + batch.rows_quarantined + batch.rows_duplicate
    if clean.source == "xapi" and whole_file:
        return Outcome("refused", detail=whole_file[0].reason)
    return Outcome("loaded", batch.rows_read - accounted,
                   f"read {batch.rows_read}, loaded {batch.rows_loaded}, quarantined {batch.rows_quarantined}, "
                   f"duplicates {batch.rows_duplicate}")


@dataclass
class Campaign:
    """What a campaign tried and found."""

    trials: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    by_source: Counter[str] = field(default_factory=Counter)
    unaccounted_trials: int = 0
    crashes: list[tuple[str, list[str], str]] = field(default_factory=list)
    hostile_paths: int = 0
    """Study trials whose holdout file was pointed outside the study's folder or at a special file."""
    outside_reads: list[str] = field(default_factory=list)
    """Files outside a study's folder that loading it opened (should be none)."""


_HOOKED = False


def _install_audit_hook() -> None:
    """Watch file opens (once per process: an audit hook cannot be removed; it records only during a study)."""
    global _HOOKED
    if not _HOOKED:
        sys.addaudithook(_audit)
        _HOOKED = True


def run(trials: int, seed: int, *, work: Path, keep: Path | None = None,
        progress: Callable[[int], None] | None = None) -> Campaign:
    """Run ``trials`` mutated inputs (seeded), in ``work``; crashing inputs are copied to ``keep``."""
    rnd = random.Random(seed)
    cleans = clean_inputs(work / "clean")
    result = Campaign()
    _install_audit_hook()
    for n in range(trials):
        clean = rnd.choice(cleans)
        data, names = mutate(clean.data, rnd)
        folder = work / "trial"
        shutil.rmtree(folder, ignore_errors=True)
        outcome = read(clean, data, folder)
        result.trials += 1
        result.hostile_paths += clean.source == "study" and "hostile path" in names
        result.outside_reads.extend(outcome.outside)
        if outcome.outside:
            outcome = Outcome("crash", detail=f"opened outside the study's folder: {', '.join(outcome.outside)}")
        result.verdicts[outcome.verdict] += 1
        result.by_source[clean.source] += 1
        if outcome.unaccounted:
            result.unaccounted_trials += 1
            outcome = Outcome("crash", outcome.unaccounted, f"records unaccounted: {outcome.detail}")
        if outcome.verdict == "crash":
            result.crashes.append((clean.rel, names, outcome.detail))
            if keep is not None:
                keep.mkdir(parents=True, exist_ok=True)
                (keep / f"{n:06d}-{Path(clean.rel).name}").write_bytes(data)
        if progress is not None and (n + 1) % 500 == 0:
            progress(n + 1)
    return result


def main() -> None:
    """Run a campaign from the command line; exit 1 when anything crashed."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, default=None, help="folder to copy crashing inputs into")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args.trials, args.seed, work=Path(tmp), keep=args.keep,
                     progress=lambda n: print(f"… {n:,} trials", file=sys.stderr))
    took = time.perf_counter() - started
    print(f"{result.trials:,} mutated inputs in {took:,.0f} s (seed {args.seed}): "
          f"{result.verdicts['loaded']:,} read (rows loaded or quarantined), {result.verdicts['refused']:,} "
          f"refused as a whole with a message, {len(result.crashes):,} crashes, "
          f"{result.unaccounted_trials:,} with records unaccounted, {len(result.outside_reads):,} files "
          f"outside a study's folder opened ({result.hostile_paths:,} studies pointed outside it)")
    print("by source: " + ", ".join(f"{k} {v:,}" for k, v in sorted(result.by_source.items())))
    for rel, names, detail in result.crashes[:5]:
        print(f"\ncrash on {rel} after {', '.join(names)}:\n{detail}")
    sys.exit(1 if result.crashes else 0)


if __name__ == "__main__":
    main()
