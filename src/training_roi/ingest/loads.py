"""What each source's files were when they were last loaded, so that an unchanged export is not read again.

Ingesting the same export twice leaves the warehouse as it was (a load replaces records by key),
but reads, validates and merges every row again: a minute for a 20,000-rep org. A source is not
read again when all of these are as they were when it was last loaded (``source_load``):

* its files: the same names, and each file's size, modification and change times (ns), device
  and inode. Every write changes the change time, which no tool can set back, so a file written
  since — or copied, touched or downloaded again, even with the same contents — is read again;
* the mapping its columns are read with, and the product that reads them
  (:func:`~training_roi.product.product_fingerprint`);
* the tables its load wrote and read (its own table; the CRM users when the mapping names people
  by name or email): nothing has written them since (``table_write``), neither a sync, another
  folder's ingest, a link nor a stopped load.

Its account (rows read, loaded, quarantined; its status) is then that load's, said to be so.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping as Map
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from ibis.backends import BaseBackend

from training_roi.ingest.mapping import Mapping
from training_roi.product import product_fingerprint
from training_roi.warehouse.load import upsert

__all__ = ["Load", "fingerprint", "known_loads", "load_accounts", "record_loads", "unchanged_since"]


@dataclass(frozen=True)
class Load:
    """A source's last load: what its files and mapping were, and each table's writes when it ended."""

    source: str
    fingerprint: str
    tables: dict[str, int]
    run_id: str


def fingerprint(files: Sequence[tuple[Path, str]], mapping: Mapping | None) -> tuple[str, str]:
    """A source's fingerprint (SHA-256 of its files' names and identities, the mapping, the product), and its files.

    The files are described by name, size, modification and change times (ns), device and inode,
    as JSON (the second value, kept in ``source_load`` for a reader).
    """
    described = []
    for path, rel in sorted(files, key=lambda f: f[1]):
        st = path.stat()
        described.append([rel, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_dev, st.st_ino])
    how = mapping.model_dump(mode="json", exclude={"path"}) if mapping is not None else None
    listed = json.dumps(described)
    text = json.dumps([listed, how, product_fingerprint()], sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest(), listed


def known_loads(con: BaseBackend) -> dict[str, Load]:
    """Every source's last load recorded in the warehouse."""
    if "source_load" not in con.list_tables():
        return {}
    out = {}
    for r in con.table("source_load").to_pyarrow().to_pylist():
        try:
            tables = {str(k): int(v) for k, v in json.loads(r["tables"]).items()}
        except (TypeError, ValueError, AttributeError):
            continue  # a record of another shape: that source is read again
        out[r["source"]] = Load(r["source"], r["fingerprint"], tables, r["run_id"])
    return out


def load_accounts(con: BaseBackend, loads: Map[str, Load]) -> dict[str, dict[str, Any]]:
    """Each recorded load's account (its ``ingest_run`` row), read before a new run records its own."""
    if not loads:
        return {}
    runs = con.table("ingest_run")
    rows = runs.filter(runs.run_id.isin(sorted({x.run_id for x in loads.values()}))).to_pyarrow().to_pylist()
    by = {(r["run_id"], r["source"]): r for r in rows}
    return {name: by[(x.run_id, name)] for name, x in loads.items() if (x.run_id, name) in by}


def unchanged_since(load: Load | None, account: dict[str, Any] | None, print_: str, writes: Map[str, int]) -> bool:
    """Whether a source need not be read again since ``load``, whose ``account`` says it was read in full.

    ``print_``: its fingerprint now; ``writes``: each table's writes now.
    """
    if load is None or account is None or load.fingerprint != print_ or not load.tables:
        return False
    if str(account["status"]).startswith(("refused", "started")):
        return False
    return all(writes.get(t, 0) == n for t, n in load.tables.items())


def record_loads(con: BaseBackend, loaded: Sequence[tuple[str, tuple[str, str], Sequence[str]]], run_id: str,
                 writes: Map[str, int]) -> None:
    """Record each source just loaded: ``(source, (fingerprint, files), the tables its load wrote and read)``.

    ``writes``: each table's writes now, after the ingest's last write.
    """
    if not loaded:
        return
    upsert(con, "source_load", pa.table({
        "source": [s for s, _, _ in loaded],
        "fingerprint": [p[0] for _, p, _ in loaded],
        "files": [p[1] for _, p, _ in loaded],
        "tables": [json.dumps({t: writes.get(t, 0) for t in tables}, sort_keys=True) for _, _, tables in loaded],
        "run_id": [run_id] * len(loaded),
    }))
