"""Ingesting a data folder: every source of the contract that is present, into the warehouse.

Each source is read completely before anything of it is written, so a file that cannot be read
stops only its own source and leaves what the warehouse already holds untouched. The result is an
:class:`IngestInfo`: per source, rows read, loaded and quarantined, which prints for people and
serialises for machines.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from ibis.backends import BaseBackend

from training_roi.errors import MappingError, SourceError, TrainingRoiError
from training_roi.ingest.loads import (
    Load,
    fingerprint,
    forget_loads,
    known_loads,
    load_accounts,
    record_loads,
    unchanged_groups,
)
from training_roi.ingest.mapping import Mapping
from training_roi.ingest.people import People
from training_roi.ingest.sources import SOURCES, source_files, split_duplicates, stream_source
from training_roi.ingest.xapi import read_xapi
from training_roi.warehouse.batch import QuarantineRow
from training_roi.warehouse.connection import ensure_tables, row_count, table_writes
from training_roi.warehouse.load import (
    Staging,
    append,
    refresh_voided,
    replace_quarantine,
    replace_table,
    upsert,
)
from training_roi.warehouse.quality import RUN_STARTED as STARTED
from training_roi.warehouse.schema import table

__all__ = ["CONTRACT_FILES", "IngestInfo", "SourceResult", "ingest_folder", "ingest_plan"]

XAPI_FILES = ("lms/**/*.jsonl", "lms/**/*.json")
CONTRACT_FILES = "crm/*.csv, lms/*.jsonl, lms/learners.csv, lms/completions.csv, surveys.csv, costs.csv"
"""The files of the data contract, in words, for the messages of a folder that holds none of them."""

Progress = Callable[[str, int, int], None]


@dataclass
class SourceResult:
    """The account of one source in one ingest."""

    source: str
    table: str
    files: int = 0
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    new: int = 0
    replaced: int = 0
    status: str = "ok"
    notes: list[str] = field(default_factory=list)
    unchanged: bool = False
    """Its files, mapping and tables were as at its last load (:mod:`training_roi.ingest.loads`): not read again,
    its account that load's."""


@dataclass
class IngestInfo:
    """What an ingest did, per source; ``ok`` is false when a source was refused."""

    data_dir: str
    run_id: str
    sources: list[SourceResult]
    voided_statements: int = 0

    @property
    def ok(self) -> bool:
        """Every source present was read."""
        return all(s.status == "ok" for s in self.sources)

    def asdict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {**asdict(self), "ok": self.ok}

    def __str__(self) -> str:
        lines = [f"ingest of {self.data_dir} (run {self.run_id[:12]})"]
        for s in self.sources:
            lines.append(
                f"  {s.source:<20} read {s.rows_read:>10,}  loaded {s.rows_loaded:>10,}  "
                f"quarantined {s.rows_quarantined:>7,}  duplicates {s.rows_duplicate:>6,}  {s.status}"
            )
        return "\n".join(lines)


def _run_id(files: list[tuple[Path, str]]) -> str:
    """A stable fingerprint of the files read: names, sizes and their first and last 64 KiB."""
    h = hashlib.sha256()
    for path, rel in sorted(files, key=lambda f: f[1]):
        size = path.stat().st_size
        h.update(f"{rel}\0{size}\0".encode())
        with path.open("rb") as fh:
            h.update(fh.read(65536))
            if size > 65536:
                fh.seek(max(size - 65536, 65536))
                h.update(fh.read())
    return h.hexdigest()


def _xapi_files(data_dir: Path, mapping: Mapping | None) -> list[tuple[Path, str]]:
    smap = mapping.sources.get("xapi") if mapping else None
    patterns = smap.file if smap and smap.file else list(XAPI_FILES)
    found = {p.relative_to(data_dir).as_posix(): p for pat in patterns for p in data_dir.glob(pat) if p.is_file()}
    return [(p, rel) for rel, p in sorted(found.items())]


def ingest_plan(data_dir: Path | str, mapping: Mapping | None = None) -> list[tuple[str, list[tuple[Path, str]]]]:
    """The sources present in ``data_dir``, each with its files (path, name in the folder), in the order they load.

    What :func:`ingest_folder` reads, found without reading anything: the server checks with it that an
    archive sent to be ingested holds a file the ingest will read.

    Raises
    ------
    SourceError
        ``data_dir`` does not exist or holds no source at all.
    MappingError
        The mapping names a source the product does not know.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise SourceError(str(root), "is not a folder")
    if mapping:
        unknown = sorted(set(mapping.sources) - set(SOURCES) - {"xapi"})
        if unknown:
            raise MappingError(
                f"mapping {mapping.path}: sources {', '.join(unknown)} unknown; "
                f"known: {', '.join([*SOURCES, 'xapi'])}"
            )
    plan: list[tuple[str, list[tuple[Path, str]]]] = [
        (name, source_files(spec, root, mapping)) for name, spec in SOURCES.items()
    ]
    plan.append(("xapi", _xapi_files(root, mapping)))
    plan = [(name, files) for name, files in plan if files]
    if not plan:
        raise SourceError(
            str(root),
            f"holds none of the contract's files ({CONTRACT_FILES}): see docs/data-contract.md or pass --mapping",
        )
    return plan


def ingest_folder(
    data_dir: Path | str,
    con: BaseBackend,
    *,
    mapping: Mapping | None = None,
    progress: Progress | None = None,
    reread: bool = False,
) -> IngestInfo:
    """Read every source present in ``data_dir`` and load it into the warehouse ``con``.

    A source whose files are the very files it was last loaded from, unchanged since (names, sizes,
    times, inodes: :mod:`training_roi.ingest.loads`), read with the same mapping by the same product,
    into tables nothing has written since (:func:`~training_roi.warehouse.connection.count_write`), is not read
    again: loading it would leave the warehouse as it is. Its account is that load's. ``reread``:
    read every source anyway.

    Raises
    ------
    SourceError
        ``data_dir`` does not exist or holds no source at all.
    MappingError
        The mapping names a source the product does not know.
    """
    root = Path(data_dir)
    plan = ingest_plan(root, mapping)
    ensure_tables(con)
    all_files = [f for _, files in plan for f in files]
    run_id = _run_id(all_files)
    tables_of = {name: _tables_of(name, mapping) for name, _ in plan}
    prints = {name: fingerprint(files, mapping) for name, files in plan}
    loads = known_loads(con)
    accounts = load_accounts(con, loads)  # before this run's records replace them (the same files: the same run id)
    same = set() if reread else unchanged_groups(tables_of, {n: p[0] for n, p in prints.items()}, loads, accounts,
                                                 table_writes(con))
    # Said before anything is loaded: a run killed half-way leaves this record (for every source
    # of the run, as the accounts are written at its end), which the quality summary reports
    # until the source is loaded in full again.
    _record_run(con, IngestInfo(str(root), run_id, [
        SourceResult(name, "", files=len(files), status=STARTED) for name, files in plan]))
    results: list[SourceResult] = []
    for step, (name, files) in enumerate(plan):
        if progress:
            progress(f"{name} (unchanged, not read again)" if name in same else name, step, len(plan))
        results.append(_unchanged(name, len(files), accounts[name], loads[name]) if name in same else _ingest_source(
            con, name, files, mapping, _rows_progress(progress, name, step, len(plan))))
    info = IngestInfo(str(root), run_id, results)
    if any(r.source == "xapi" and not r.unchanged and (r.status == "ok" or r.status.startswith("partly"))
           for r in results):
        if progress:
            progress("voiding", len(plan), len(plan) + 1)
        info.voided_statements = refresh_voided(con)
    elif any(r.source == "xapi" and r.unchanged for r in results):
        statements = con.table("lms_statement")
        info.voided_statements = row_count(statements.filter(statements.is_voided))
    _record_run(con, info)
    read = [r for r in results if not r.unchanged]
    record_loads(con, [(r.source, prints[r.source], tables_of[r.source], r.rows_duplicate, r.notes) for r in read
                       if r.status == "ok" or r.status.startswith("partly")], run_id, table_writes(con), tables_of)
    forget_loads(con, [r.source for r in read if r.status.startswith("refused")])
    return info


def _unchanged(name: str, files: int, account: dict[str, Any], load: Load) -> SourceResult:
    """The account of a source not read again: its last load's."""
    return SourceResult(name, _table_of(name), files=files, rows_read=account["rows_read"],
                        rows_loaded=account["rows_loaded"], rows_quarantined=account["rows_quarantined"],
                        rows_duplicate=load.duplicates, status=account["status"], notes=list(load.notes),
                        unchanged=True)


def _table_of(name: str) -> str:
    return "lms_statement" if name == "xapi" else SOURCES[name].table


def _tables_of(name: str, mapping: Mapping | None) -> tuple[str, ...]:
    """The tables a source's load writes (and reads): its own, and the CRM users when it names people."""
    return (_table_of(name), "crm_user") if _matches_people(name, mapping) else (_table_of(name),)


def _rows_progress(progress: Progress | None, name: str, step: int, steps: int) -> Callable[[int], None] | None:
    """Progress within one source: records read so far."""
    if progress is None:
        return None
    report = progress

    def on_rows(rows: int) -> None:
        report(f"{name}: {rows:,} rows", step, steps)

    return on_rows


def _ingest_source(con: BaseBackend, name: str, files: list[tuple[Path, str]],
                   mapping: Mapping | None, on_rows: Callable[[int], None] | None = None) -> SourceResult:
    table_name = _table_of(name)
    result = SourceResult(name, table_name, files=len(files))
    rels = [rel for _, rel in files]
    staging = Staging(con, table_name)
    people = People()
    try:
        if name == "xapi":
            batch = read_xapi(files, progress=on_rows, sink=staging.add)
            quarantine, notes = batch.quarantine, batch.notes
            result.rows_read, result.rows_loaded = batch.rows_read, batch.rows_loaded
            result.rows_quarantined, result.rows_duplicate = batch.rows_quarantined, batch.rows_duplicate
            refused = sorted({q.source_file for q in batch.quarantine if q.source_line == 0})
            if refused:  # a whole file not read: the ingest is not ok, though the other files load
                shown = ", ".join(refused[:3]) + (f" and {len(refused) - 3:,} more" if len(refused) > 3 else "")
                result.status = (f"partly refused: {shown} could not be read (the quarantine says why); "
                                 f"{len(files) - len(refused):,} other file(s) loaded")
        else:
            people = People.from_warehouse(con) if _matches_people(name, mapping) else People()
            tally = stream_source(SOURCES[name], files, staging, mapping, on_rows=on_rows, people=people)
            dropped, clashes, duplicates = split_duplicates(
                staging.repeated_keys(), table(table_name).key, name)
            staging.remove(dropped)
            quarantine, notes = tally.quarantine + clashes, tally.notes
            result.rows_read, result.rows_duplicate = tally.rows_read, duplicates
            result.rows_loaded = tally.rows_typed - len(dropped)
            result.rows_quarantined = len({(q.source_file, q.source_line) for q in quarantine})
    except TrainingRoiError as exc:
        staging.drop()
        result.status = f"refused: {exc}"
        file = exc.file if isinstance(exc, SourceError) else (mapping.path if mapping else "")
        column = exc.column if isinstance(exc, SourceError) else None
        replace_quarantine(con, name, [file], [
            QuarantineRow(name, file, 0, column or "", f"source refused: {exc}", "")
        ])
        return result
    except BaseException:
        # A stop (Ctrl-C) or a failure of the engine: the source's rows go, the table stays as it was.
        staging.drop()
        raise
    replace = rels if name != "xapi" and SOURCES[name].replace_by_file else ()
    counts = staging.merge(replace_files=replace)
    if people.created:
        notes = [*notes, *_add_people(con, name, people)]
    replace_quarantine(con, name, rels, quarantine)
    result.new, result.replaced = counts.new, counts.replaced
    result.notes = notes
    return result


def _matches_people(name: str, mapping: Mapping | None) -> bool:
    """Whether the mapping gives some field of source ``name`` by a person's name or email."""
    smap = mapping.sources.get(name) if mapping else None
    return smap is not None and any(f is not None and f.match != "id" for f in smap.fields.values())


def _add_people(con: BaseBackend, source: str, people: People) -> list[str]:
    """Load the users a source named by name or email and the warehouse did not have; say how many."""
    rows = people.new_users()
    users = con.table("crm_user")
    ids = rows.column("user_id").to_pylist()
    known = set(users.filter(users.user_id.isin(ids)).user_id.to_pyarrow().to_pylist())
    fresh = rows.filter(pa.array([i not in known for i in ids]))
    if not fresh.num_rows:
        return []
    append(con, "crm_user", fresh)
    shown = ", ".join(repr(n or e) for n, e in zip(fresh.column("name").to_pylist()[:5],
                                                   fresh.column("email").to_pylist()[:5], strict=True))
    more = f" and {fresh.num_rows - 5:,} more" if fresh.num_rows > 5 else ""
    return [f"{source}: {fresh.num_rows:,} people named in it were not CRM users and were added as users "
            f"(id = their name or email as compared): {shown}{more}"]


def _record_run(con: BaseBackend, info: IngestInfo) -> None:
    """Record each source's account; a source read in full clears the unfinished records of earlier runs."""
    done = [s.source for s in info.sources if s.status != STARTED and not s.status.startswith("refused")]
    if done:
        runs = con.table("ingest_run")
        stale = (runs.status == STARTED) & runs.source.isin(done) & (runs.run_id != info.run_id)
        if row_count(runs.filter(stale)):  # rare: a killed run's records; rewriting the table costs
            replace_table(con, "ingest_run", runs.filter(~stale))
    rows = pa.table({
        "run_id": [info.run_id] * len(info.sources),
        "source": [s.source for s in info.sources],
        "files": pa.array([s.files for s in info.sources], pa.int64()),
        "rows_read": pa.array([s.rows_read for s in info.sources], pa.int64()),
        "rows_loaded": pa.array([s.rows_loaded for s in info.sources], pa.int64()),
        "rows_quarantined": pa.array([s.rows_quarantined for s in info.sources], pa.int64()),
        "status": [s.status for s in info.sources],
    })
    upsert(con, "ingest_run", rows)
