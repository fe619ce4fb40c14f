"""An ingest killed at any point (kill -9, in a process of its own) and run again equals a clean ingest."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from training_roi.simulate import simulate
from training_roi.warehouse.connection import connect
from training_roi.warehouse.schema import TABLES

pytestmark = pytest.mark.slow

_INGEST = [sys.executable, "-c", "from training_roi.cli import app; app()", "ingest"]


def _ingest(data: Path, db: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*_INGEST, str(data), "--db", str(db), "--json"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def _snapshot(db: Path) -> dict[str, str]:
    """Each table's rows, sorted, as one digest (what a user could read from the warehouse)."""
    con = connect(db, create=False)
    out = {}
    for name in sorted(set(TABLES) - {"table_write", "source_load"}):  # not the counts of writes
        rows = con.table(name).to_pyarrow().to_pylist()
        text = "\n".join(sorted(repr(sorted(r.items())) for r in rows))
        out[name] = f"{len(rows)}:{hashlib.sha256(text.encode()).hexdigest()[:16]}"
    leftovers = [t for t in con.list_tables() if t not in TABLES]
    con.disconnect()
    out["(other tables)"] = ",".join(sorted(leftovers))
    return out


def test_a_killed_ingest_run_again_equals_a_clean_one(tmp_path: Path):
    data = tmp_path / "data"
    simulate(data, reps=40, months=8, seed=4)
    clean = tmp_path / "clean.duckdb"
    started = time.perf_counter()
    assert _ingest(data, clean).wait(timeout=300) == 0
    whole = time.perf_counter() - started
    expected = _snapshot(clean)
    rnd = random.Random(11)
    for attempt in range(4):
        db = tmp_path / f"killed{attempt}.duckdb"
        if attempt % 2:  # a second ingest killed over a loaded warehouse: the reload path
            assert _ingest(data, db).wait(timeout=300) == 0
        process = _ingest(data, db)
        time.sleep(rnd.uniform(0.2, 0.9) * whole)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
        assert _ingest(data, db).wait(timeout=300) == 0
        assert _snapshot(db) == expected, f"attempt {attempt}"
