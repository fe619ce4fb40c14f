"""The ``sync`` command: pull the live sources of ``sync.yaml`` into the warehouse, once or on a schedule.

Registered on the one ``training-roi`` command by :mod:`training_roi.cli`, which imports this
module last. It parses arguments, takes the lock beside the warehouse, and calls
:func:`training_roi.sync.sync`; like ``ingest`` it then links learners and exits with status 1 when a
source failed or records were quarantined (2 for a mistake in the command or the configuration).
Learners are linked again only when the sync loaded rows into a table the links are made from.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from training_roi.cli import DbOption, JsonOption, _err, _json, _out, _user_errors, app
from training_roi.errors import SyncConfigError, TrainingRoiError
from training_roi.warehouse.target import DEFAULT_DB

__all__ = ["parse_every", "sync_command"]

_EVERY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_STOPPED = ("stopped (Ctrl-C): the pages fetched so far are kept in the staging folder and the warehouse holds "
            "what was loaded; the next sync loads the rest and goes on from there")


def parse_every(text: str) -> float:
    """Seconds in an interval written like ``24h``, ``30m``, ``90s`` or ``1d``."""
    found = _EVERY.match(text)
    if not found or float(found[1]) <= 0:
        raise TrainingRoiError(f"--every {text}: expected a positive interval such as 24h, 30m, 90s or 1d")
    return float(found[1]) * _UNITS[found[2]]


def _staging(config: Any, db: str) -> Path:
    """The staging folder: the configuration's, or beside a DuckDB warehouse file."""
    if config.staging is not None:
        return Path(config.staging)
    if "://" in db and not db.lower().startswith("duckdb://"):
        raise SyncConfigError(f"{config.path}: staging: a warehouse given as a URL needs a staging folder for the "
                              "pages fetched (staging: FOLDER)")
    file = db.split("://", 1)[1].split("?", 1)[0] if "://" in db else db
    return Path(f"{file}.sync")


def lock_file(config: Any, db: str) -> Path:
    """The lock a sync or push of the warehouse holds: beside its staging folder."""
    staging = _staging(config, db)
    return staging.parent / f"{staging.name}.lock"


def _summary(info: Any) -> Table:
    t = Table(title=f"Sync {info.run_id[:12]}", title_justify="left")
    for col in ("source", "pages", "new", "loaded", "quarantined", "newest stored", "status"):
        t.add_column(col, justify="right" if col in ("pages", "new", "loaded", "quarantined") else "left")
    for s in info.sources:
        t.add_row(s.source, f"{s.pages:,}", f"{s.statements:,}", f"{s.loaded:,}", f"{s.quarantined:,}",
                  (s.watermark or "")[:23], "ok" if s.status == "ok" else "[red]failed[/]")
    return t


def _once(config: Any, db: str, staging: Path, as_json: bool, links: Path | None) -> Any:
    """One sync of every source, then the learners linked; prints the summary; returns the :class:`SyncInfo`."""
    from training_roi.linking import LINK_INPUTS
    from training_roi.linking import link as run_link
    from training_roi.sync import open_sources, sync
    from training_roi.warehouse.connection import connect

    err = _err()
    last = [0.0]

    def progress(line: str) -> None:
        now = time.monotonic()
        if ": page " in line and now - last[0] < 1.0:
            return
        last[0] = now
        err.print(f"… {escape(line)}", highlight=False, soft_wrap=True)

    def on_retry(line: str, wait: float) -> None:
        err.print(f"… {escape(line)}, in {wait:.1f} s", highlight=False, soft_wrap=True)

    sources = open_sources(config, on_retry=on_retry)
    con = connect(db)
    try:
        info = sync(con, sources, staging, progress, link_inputs=LINK_INPUTS)
        # Linking reads every statement and identity again: worth it only when what it reads changed, in
        # this sync or in one stopped before it could link (the mark in sync_state outlives a stop).
        from training_roi.sync.state import links_stale, mark_links

        linked = None
        if links_stale(con) or (links and info.loaded):
            linked = run_link(con, explicit=links)
            mark_links(con, stale=False)
    finally:
        for source in sources:
            source.close()
        con.disconnect()
    if as_json:
        _json({"sync": info.asdict(), "link": linked.asdict() if linked is not None else None})
        return info
    out = _out()
    out.print(_summary(info))
    for s in info.sources:
        for note in s.notes:
            out.print(f"  {escape(s.source)}: {escape(note)}", highlight=False, soft_wrap=True)
        if s.error:
            err.print(f"[red]error:[/] {escape(s.source)}: {escape(s.error)}", highlight=False, soft_wrap=True)
    if info.quarantined:
        out.print(f"{info.quarantined:,} record(s) quarantined: `training-roi quality --db {escape(db)}` says why",
                  highlight=False)
    return info


@app.command(name="sync")
def sync_command(
    config: Annotated[Path, typer.Option("--config", help="the sources to pull (YAML; docs/sync.md)")] = Path(
        "sync.yaml"),
    db: DbOption = DEFAULT_DB,
    every: Annotated[str | None, typer.Option(
        "--every", help="run in the foreground, syncing again after each interval (24h, 30m, 90s, 1d) until "
                        "stopped; a lock beside the warehouse keeps two syncs from overlapping")] = None,
    links: Annotated[Path | None, typer.Option(help="explicit learner → CRM id links (CSV: learner, crm_id)")] = None,
    as_json: JsonOption = False,
) -> None:
    """Pull sync.yaml's live sources (LRS, Salesforce, HubSpot) into the warehouse from where the last sync stopped."""
    from training_roi.sync import SyncLock, load_config

    info = None
    with _user_errors(_STOPPED):
        interval = parse_every(every) if every is not None else None
        cfg = load_config(config)
        staging = _staging(cfg, db)
        with SyncLock(lock_file(cfg, db)):
            while True:
                info = _once(cfg, db, staging, as_json, links)
                if interval is None:
                    break
                at = datetime.now(UTC) + timedelta(seconds=interval)
                _err().print(f"… next sync at {at:%Y-%m-%d %H:%M:%S} UTC (Ctrl-C stops)", highlight=False)
                time.sleep(interval)
    if info is not None and (not info.ok or info.quarantined):
        raise typer.Exit(1)
