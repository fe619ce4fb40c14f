"""One sync: each live source pulled from its watermark, staged page by page, loaded through the ingest.

For a source, the runner asks for the records stored after the watermark (less a small overlap,
since ``since`` is exclusive and stored times can tie), skips those the watermark says are loaded,
writes each page in the staging folder (:mod:`.staging`) and, every ``load_every`` records and at
the end, loads the staged pages with :func:`~training_roi.ingest.folder.ingest_folder`: the same
validation, quarantine (naming the page file and line), merge by key and voiding as a folder of
exports. Only then does the watermark move, and only then are the pages deleted. Running it twice
changes nothing; killing it at any point and running it again gives the same warehouse.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ibis.backends import BaseBackend

from training_roi.errors import SyncError, TrainingRoiError
from training_roi.ingest.folder import ingest_folder
from training_roi.ingest.sources import SOURCES
from training_roi.ingest.xapi.rows import gc_paused
from training_roi.sync.source import Source
from training_roi.sync.staging import Cursor, Stage, chain_name
from training_roi.sync.state import (
    RunRecord,
    Watermark,
    links_stale,
    mark_links,
    read_watermark,
    record_run,
    save_watermark,
)
from training_roi.warehouse.connection import ensure_tables

__all__ = ["SourceSync", "SyncInfo", "sync", "sync_source"]

Progress = Callable[[str], None]


@dataclass
class SourceSync:
    """The account of one source in one sync."""

    source: str
    kind: str
    endpoint: str
    status: str = "ok"
    pages: int = 0
    requests: int = 0
    fetched: int = 0
    statements: int = 0
    loaded: int = 0
    quarantined: int = 0
    watermark: str | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    """The warehouse's tables this source loaded rows into (what must be derived again, such as the links)."""


@dataclass
class SyncInfo:
    """What a sync did, per source; ``ok`` is false when a source failed."""

    run_id: str
    sources: list[SourceSync]

    @property
    def ok(self) -> bool:
        """Every source was pulled to its end."""
        return all(s.status == "ok" for s in self.sources)

    @property
    def quarantined(self) -> int:
        """Records put in quarantine by this sync, over every source."""
        return sum(s.quarantined for s in self.sources)

    @property
    def loaded(self) -> int:
        """Records loaded by this sync, over every source."""
        return sum(s.loaded for s in self.sources)

    def asdict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {**asdict(self), "ok": self.ok}

    def __str__(self) -> str:
        lines = [f"sync {self.run_id[:12]}"]
        for s in self.sources:
            lines.append(f"  {s.source:<20} pages {s.pages:>6,}  new {s.statements:>9,}  loaded {s.loaded:>9,}  "
                         f"quarantined {s.quarantined:>6,}  {s.status if s.status == 'ok' else 'FAILED'}")
            if s.error:
                lines.append(f"    {s.error}")
        return "\n".join(lines)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _floor_ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _advance(cursor: Cursor, positions: list[tuple[datetime, str]], overlap: float) -> None:
    """Move the cursor's high mark over ``positions``; keep the records stored within the overlap before it."""
    pairs = {(datetime.fromisoformat(s), i) for s, i in cursor.recent} | set(positions)
    if not pairs:
        return
    high = max(s for s, _ in pairs)
    if cursor.high is not None:
        high = max(high, datetime.fromisoformat(cursor.high))
    cutoff = _floor_ms(high - timedelta(seconds=overlap))
    cursor.high = _iso(high)
    cursor.recent = [[_iso(s), i] for s, i in sorted(pairs) if s > cutoff]


def _loaded(mark: Watermark) -> set[tuple[datetime, str]]:
    """The records the watermark says are loaded, by stored time and id.

    By both: a record a source changes (a CRM's) comes back with a later time and the same id,
    and is new then.
    """
    return {(datetime.fromisoformat(s), i) for s, i in mark.recent}


def _new_chain(endpoint: str, mark: Watermark, overlap: float) -> Cursor:
    """A chain from the watermark, less the overlap: stored times equal to it (ties) are asked for again."""
    since = None if mark.stored is None else _floor_ms(mark.stored - timedelta(seconds=overlap))
    return Cursor(endpoint=endpoint, chain=chain_name(since), since=None if since is None else _iso(since),
                  high=None if mark.stored is None else _iso(mark.stored), recent=list(mark.recent))


def _may_load(source: Source) -> set[str] | None:
    """The warehouse tables a source's pages load into, when its mapping names them (None: any)."""
    if source.mapping is None or not source.mapping.sources:
        return None
    known = [SOURCES[name].table for name in source.mapping.sources if name in SOURCES]
    return set(known) if len(known) == len(source.mapping.sources) else None


class _SourceRun:
    """One source's pull in one sync: the loop of fetch, stage, load."""

    def __init__(self, con: BaseBackend, source: Source, stage: Stage, result: SourceSync,
                 progress: Progress | None, link_inputs: frozenset[str] = frozenset()) -> None:
        self.con = con
        tables = _may_load(source)
        # A source that loads none of the links' inputs (a CRM's opportunities) leaves them as they are.
        self.link_inputs = link_inputs if tables is None else link_inputs & tables
        self.source = source
        self.stage = stage
        self.result = result
        self.progress = progress or (lambda _line: None)
        self.staged = 0

    def run(self) -> None:
        src, stage, result = self.source, self.stage, self.result
        mark = read_watermark(self.con, src.name)
        if mark.endpoint is not None and mark.endpoint != result.endpoint:
            result.notes.append(f"the endpoint changed from {mark.endpoint}: pulled from the start again")
            mark = Watermark()
        cursor = stage.read_cursor()
        if cursor is not None and cursor.endpoint != result.endpoint:
            stage.clear()
            cursor = None
        if cursor is not None and cursor.done:  # a sync stopped after its last page: finish its load first
            self.load(cursor)
            stage.cursor_path.unlink(missing_ok=True)
            mark, cursor = read_watermark(self.con, src.name), None
        resumed = cursor is not None
        if resumed:
            pending = len(stage.pending())
            self.progress(f"{src.name}: resuming a sync that stopped ({pending:,} page(s) fetched, not yet loaded)")
        else:
            cursor = _new_chain(result.endpoint, mark, src.overlap)
            stage.write_cursor(cursor)
        assert cursor is not None
        skip = _loaded(mark)
        while not cursor.done:
            # A page is thousands of dicts that reference counting frees: the cyclic collector, left on,
            # walked them again and again (a third of an LRS sync's time). It is paused until they are gone.
            with gc_paused():
                since = datetime.fromisoformat(cursor.since) if cursor.since else None
                try:
                    page = src.fetch(since, cursor.next if cursor.index else None)
                except SyncError:
                    if not (resumed and cursor.next):
                        raise
                    # The link a stopped sync kept may have expired: load what it fetched, start again from there.
                    result.notes.append("the source no longer answered the stopped sync's next-page link; "
                                        "pulled again from the records loaded")
                    self.load(cursor)
                    mark = read_watermark(self.con, src.name)
                    cursor, skip = _new_chain(result.endpoint, mark, src.overlap), _loaded(mark)
                    stage.write_cursor(cursor)
                    resumed = False
                    continue
                resumed = False
                positions = [src.position(r) for r in page.records]
                fresh = [r for r, p in zip(page.records, positions, strict=True) if p is None or p not in skip]
                _advance(cursor, [p for p in positions if p is not None and p not in skip], src.overlap)
                if fresh:
                    stage.write_page(fresh, cursor.chain, cursor.index)
                cursor.index += 1
                cursor.next = page.next
                stage.write_cursor(cursor)
                result.pages += 1
                result.fetched += len(page.records)
                result.statements += len(fresh)
                self.staged += len(fresh)
                del page, positions, fresh
            self.progress(f"{src.name}: page {result.pages:,}, {result.statements:,} new record(s)")
            if self.staged >= src.load_every:
                self.load(cursor)
        self.load(cursor)
        stage.cursor_path.unlink(missing_ok=True)

    def load(self, cursor: Cursor) -> None:
        """Ingest the staged pages, then move the watermark over them, then delete them."""
        pages = self.stage.pending()
        if pages:
            self.progress(f"{self.source.name}: loading {len(pages):,} page(s)")
            # Which tables the load writes is known only once it is done: the links are marked stale
            # before it (a stop part-way then links once too often, never once too few) and the mark is
            # taken back when the load wrote none of their inputs.
            marked = bool(self.link_inputs) and not links_stale(self.con)
            if marked:
                mark_links(self.con, stale=True)
            info = ingest_folder(self.stage.root, self.con, mapping=self.source.mapping)
            if marked and not any(p.rows_loaded and p.table in self.link_inputs for p in info.sources):
                mark_links(self.con, stale=False)
            for part in info.sources:
                if part.rows_loaded and part.table not in self.result.tables:
                    self.result.tables.append(part.table)
                self.result.loaded += part.rows_loaded
                self.result.quarantined += part.rows_quarantined
                self.result.notes += part.notes
                if part.status != "ok":
                    raise SyncError(f"{self.source.name}: the staged pages could not be loaded: {part.status}")
        # A chain whose records come in no order (a bulk job's) moves the watermark only once it is read whole.
        if cursor.high is not None and (cursor.done or getattr(self.source, "ordered", True)):
            high = datetime.fromisoformat(cursor.high)
            save_watermark(self.con, self.source.name, self.source.kind,
                           Watermark(self.result.endpoint, high, cursor.recent))
            self.result.watermark = _iso(high)
        self.stage.remove(pages)
        self.staged = 0


def sync_source(con: BaseBackend, source: Source, staging: Path, run_id: str,
                progress: Progress | None = None, link_inputs: frozenset[str] = frozenset()) -> SourceSync:
    """Pull one source into the warehouse and record the run; a failure is recorded and returned, not raised.

    A load that may write one of ``link_inputs`` marks the learner links stale first (see
    :func:`~training_roi.sync.state.links_stale`).
    """
    result = SourceSync(source.name, source.kind, source.describe())
    record = RunRecord(run_id, source.name, source.kind, result.endpoint, started=datetime.now(UTC))
    record_run(con, record)
    try:
        _SourceRun(con, source, Stage(staging, source), result, progress, link_inputs).run()
    except TrainingRoiError as exc:
        result.status, result.error = "failed", str(exc)
    finally:
        result.requests = source.requests
    record.finished = datetime.now(UTC)
    record.status = result.status
    record.error = result.error
    record.pages, record.statements = result.pages, result.statements
    record.loaded, record.quarantined = result.loaded, result.quarantined
    record_run(con, record)
    if result.watermark is None:
        mark = read_watermark(con, source.name)
        result.watermark = None if mark.stored is None else _iso(mark.stored)
    return result


def sync(con: BaseBackend, sources: list[Source], staging: Path, progress: Progress | None = None,
         link_inputs: frozenset[str] = frozenset()) -> SyncInfo:
    """Pull every source in turn (one failing does not stop the others).

    ``link_inputs`` are the tables the learner links are made from: a load into one leaves them marked stale
    until they are made again.
    """
    ensure_tables(con)
    run_id = uuid.uuid4().hex
    return SyncInfo(run_id, [sync_source(con, s, staging, run_id, progress, link_inputs) for s in sources])
