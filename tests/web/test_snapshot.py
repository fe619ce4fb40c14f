"""The server's snapshots of the warehouse: a held snapshot outlives the loads that replace it."""

from __future__ import annotations

from pathlib import Path

import duckdb

from training_roi.web.snapshot import KEEP, Snapshot, Snapshots


def _load(db: Path, value: int) -> None:
    """A load: one more row written into the warehouse (the file's write time moves on)."""
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE IF NOT EXISTS t (v INTEGER)")
        con.execute("INSERT INTO t VALUES (?)", [value])
        con.execute("CHECKPOINT")


def _fresh(snapshots: Snapshots, db: Path, value: int) -> None:
    """Load, then wait until the file's write time differs from the snapshot's, and swap a new snapshot in."""
    before = snapshots.current().source_modified
    _load(db, value)
    while snapshots._written() == before:  # a coarse file clock: write again until the time moves
        _load(db, -1)
    assert snapshots.refresh()


def test_a_held_snapshot_stays_readable_until_let_go_however_many_loads_come(tmp_path: Path):
    db = tmp_path / "roi.duckdb"
    _load(db, 1)
    snapshots = Snapshots(db, tmp_path / "snaps", every=0.0, background=False)
    try:
        with snapshots.held() as held:
            for value in range(2, 2 + KEEP + 2):  # more loads than snapshots kept open
                _fresh(snapshots, db, value)
            assert held.path.exists()
            assert held.sql("SELECT list(v ORDER BY v) FROM t") == [([1],)]  # the data as it was when held
            newest = snapshots.current()
            assert newest is not held and newest.sql("SELECT max(v) FROM t") == [(2 + KEEP + 1,)]
        assert not held.path.exists()  # let go: closed and deleted, as any replaced snapshot
        assert len(list((tmp_path / "snaps").glob("snapshot-*.duckdb"))) == KEEP
        with snapshots.held() as kept:
            snapshots.close()  # the server stops while a run reads: the run's copy outlives the others
            assert kept.path.exists() and kept.sql("SELECT count(*) FROM t")[0][0] >= 2
        assert list((tmp_path / "snaps").glob("snapshot-*.duckdb")) == []
    finally:
        snapshots.close()


def test_figures_are_recomputed_on_one_thread_and_the_swapped_snapshot_gets_them_all(tmp_path: Path):
    db = tmp_path / "roi.duckdb"
    _load(db, 1)
    seen: list[object] = []

    def recompute(old: str, new: Snapshot) -> None:
        seen.append(new.sql("SELECT current_setting('threads')")[0][0])

    snapshots = Snapshots(db, tmp_path / "snaps", every=0.0, background=False, on_new=recompute)
    try:
        _fresh(snapshots, db, 2)
        assert seen == [1]  # while the requests still read the old copy
        with duckdb.connect() as fresh:
            default = fresh.sql("SELECT current_setting('threads')").fetchone()
        assert snapshots.current().sql("SELECT current_setting('threads')") == [default]
    finally:
        snapshots.close()
