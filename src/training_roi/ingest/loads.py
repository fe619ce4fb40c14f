"""What each source's files were when they were last loaded, so that an unchanged export is not read again.

Ingesting the same export twice leaves the warehouse as it was (a load replaces records by key),
but reads, validates and merges every row again: a minute for a 20,000-rep org. Sources are not
read again when reading them could change nothing. Sources that write one table (Task and Event
both write the CRM activities; a source whose mapping names people by name or email writes the
CRM users too) are decided together, since a later one may replace an earlier one's records; so
for every source of such a group, all of these must be as they were at the group's last load
(``source_load``):

* its files: the same names, and each file's size, modification and change times (ns), device
  and inode. Every write changes the change time, which no tool can set back, so a file written
  since — or copied, touched or downloaded again, even with the same contents — is read again;
* the mapping its columns are read with, and the product that reads them
  (:func:`~training_roi.product.product_fingerprint`);
* its tables: the same sources of this ingest write them, and nothing has written them since
  (``table_write``: a sync, another folder's ingest, a stopped load, a table dropped and made
  again by the product). Edits made to the warehouse by hand, outside the product, are not
  seen: ``ingest --reread`` after them.

A group not read again keeps its sources' accounts (rows read, loaded, quarantined,
duplicates, notes, status) from that load.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping as Map
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from ibis.backends import BaseBackend

from training_roi.ingest.mapping import Mapping
from training_roi.product import product_fingerprint
from training_roi.warehouse.load import replace_table, upsert

__all__ = ["Load", "fingerprint", "forget_loads", "known_loads", "load_accounts", "record_loads", "unchanged_groups"]


@dataclass(frozen=True)
class Load:
    """A source's last load: its fingerprint, and each of its tables' writes and writers when its ingest ended."""

    source: str
    fingerprint: str
    tables: dict[str, tuple[int, tuple[str, ...]]]
    run_id: str
    duplicates: int = 0
    notes: tuple[str, ...] = field(default=())


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
    """Every source's last load recorded in the warehouse (a record of another shape is left out: read again)."""
    if "source_load" not in con.list_tables():
        return {}
    out = {}
    for r in con.table("source_load").to_pyarrow().to_pylist():
        try:
            tables = {str(t): (int(n), tuple(str(s) for s in who)) for t, (n, who) in json.loads(r["tables"]).items()}
            account = json.loads(r["account"] or "{}")
            out[r["source"]] = Load(r["source"], r["fingerprint"], tables, r["run_id"],
                                    int(account.get("duplicates", 0)), tuple(account.get("notes", ())))
        except (TypeError, ValueError, AttributeError):
            continue
    return out


def load_accounts(con: BaseBackend, loads: Map[str, Load]) -> dict[str, dict[str, Any]]:
    """Each recorded load's account (its ``ingest_run`` row), read before a new run records its own."""
    if not loads:
        return {}
    runs = con.table("ingest_run")
    rows = runs.filter(runs.run_id.isin(sorted({x.run_id for x in loads.values()}))).to_pyarrow().to_pylist()
    by = {(r["run_id"], r["source"]): r for r in rows}
    return {name: by[(x.run_id, name)] for name, x in loads.items() if (x.run_id, name) in by}


def writers(tables_of: Map[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """Each table and the sources of an ingest that write it, in the ingest's order (``tables_of`` is in it)."""
    out: dict[str, list[str]] = {}
    for source, tables in tables_of.items():
        for t in tables:
            out.setdefault(t, []).append(source)
    return {t: tuple(s) for t, s in out.items()}


def unchanged_groups(tables_of: Map[str, Sequence[str]], prints: Map[str, str], loads: Map[str, Load],
                     accounts: Map[str, dict[str, Any]], writes: Map[str, int]) -> set[str]:
    """The sources of an ingest that need not be read: every source of their group is unchanged since its load.

    ``tables_of``: each source of the ingest, in its order, and the tables its load writes (and
    reads); ``prints``: each source's fingerprint now; ``writes``: each table's writes now.
    """
    who = writers(tables_of)
    groups = _groups(tables_of)

    def same(source: str) -> bool:
        load, account = loads.get(source), accounts.get(source)
        if load is None or account is None or load.fingerprint != prints[source]:
            return False
        if str(account["status"]).startswith(("refused", "started")):
            return False
        if set(load.tables) != set(tables_of[source]):
            return False
        return all(load.tables[t] == (writes.get(t, 0), who[t]) for t in tables_of[source])

    return {s for group in groups for s in group if all(same(x) for x in group)}


def _groups(tables_of: Map[str, Sequence[str]]) -> list[set[str]]:
    """The sources joined by a table they both write (connected components)."""
    groups: list[set[str]] = []
    for source, tables in tables_of.items():
        joined = {source}
        for g in [g for g in groups if any(set(tables) & set(tables_of[x]) for x in g)]:
            joined |= g
            groups.remove(g)
        groups.append(joined)
    return groups


def record_loads(con: BaseBackend, loaded: Sequence[tuple[str, tuple[str, str], Sequence[str], int, Sequence[str]]],
                 run_id: str, writes: Map[str, int], tables_of: Map[str, Sequence[str]]) -> None:
    """Record each source just loaded: ``(source, (fingerprint, files), its tables, duplicates, notes)``.

    ``writes``: each table's writes now, after the ingest's last write; ``tables_of``: every source
    of the ingest and its tables, in its order (who wrote each table).
    """
    if not loaded:
        return
    who = writers(tables_of)
    upsert(con, "source_load", pa.table({
        "source": [s for s, *_ in loaded],
        "fingerprint": [p[0] for _, p, *_ in loaded],
        "files": [p[1] for _, p, *_ in loaded],
        "tables": [json.dumps({t: [writes.get(t, 0), list(who[t])] for t in tables}, sort_keys=True)
                   for _, _, tables, *_ in loaded],
        "account": [json.dumps({"duplicates": d, "notes": list(n)}) for *_, d, n in loaded],
        "run_id": [run_id] * len(loaded),
    }))


def forget_loads(con: BaseBackend, sources: Sequence[str]) -> None:
    """Forget the last loads of ``sources`` (refused now: their quarantine rows were rewritten): read next time."""
    if not sources or "source_load" not in con.list_tables():
        return
    t = con.table("source_load")
    replace_table(con, "source_load", t.filter(~t.source.isin(list(sources))))
