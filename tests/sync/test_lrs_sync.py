"""Syncing from a real LRS (Ralph): what is loaded, what is fetched again, failures, kills and the lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.sync.conftest import (
    PASSWORD,
    ROOT,
    Proxy,
    Ralph,
    credentials,
    run_sync,
    statement,
    voiding,
    write_config,
)
from training_roi.warehouse.connection import connect

pytestmark = pytest.mark.lrs


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    con = connect(str(db), create=False)
    try:
        table = con.sql(sql).to_pyarrow()
    finally:
        con.disconnect()
    return [tuple(r.values()) for r in table.to_pylist()]


def snapshot(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every canonical and link table's rows, sorted: two warehouses with equal snapshots hold the same data."""
    tables = ("lms_statement", "quarantine", "learning_record", "learner_identity")
    return {t: sorted(rows(db, f"SELECT * FROM {t}"), key=repr) for t in tables}


def test_a_sync_loads_every_statement_and_the_next_only_the_new_ones(ralph: Ralph, proxy: Proxy, tmp_path: Path):
    # One POST per statement, as an LMS sends them while learners work: their stored times differ.
    seeded = [statement(i) for i in range(25)]
    for s in seeded:
        ralph.post([s])
    config = write_config(tmp_path / "sync.yaml", f"{proxy.url}/xAPI/", page_size=10)
    db = tmp_path / "roi.duckdb"

    first = run_sync("--config", str(config), "--db", str(db))
    assert first.returncode == 0, first.stderr
    loaded = rows(db, "SELECT statement_id, actor_email, verb_id FROM lms_statement")
    expected = {(s["id"], s["actor"]["mbox"].removeprefix("mailto:"), s["verb"]["id"]) for s in seeded}
    assert set(loaded) == expected and len(loaded) == 25
    assert len(proxy.statements_requests()) == 3  # 10 + 10 + 5
    assert not os.listdir(tmp_path / "roi.duckdb.sync" / "lrs-main" / "lms" / "sync" / "lrs-main")

    newest = max(datetime.fromisoformat(s["stored"]) for s in ralph.get(limit="1000")["statements"])
    added = [statement(i) for i in range(25, 29)]
    ralph.post([*added, voiding(99, seeded[0]["id"])])
    proxy.log.clear()
    second = run_sync("--config", str(config), "--db", str(db))
    assert second.returncode == 0, second.stderr
    requests = proxy.statements_requests()
    # From the newest stored time loaded, less a millisecond (ties), at millisecond precision.
    since = newest - timedelta(milliseconds=1)
    assert len(requests) == 1
    assert requests[0]["since"] == [since.strftime("%Y-%m-%dT%H:%M:%S.") + f"{since.microsecond // 1000:03d}Z"]
    assert rows(db, "SELECT count(*) FROM lms_statement") == [(30,)]
    assert rows(db, "SELECT statement_id FROM lms_statement WHERE is_voided") == [(seeded[0]["id"],)]
    runs = rows(db, "SELECT statements, status FROM sync_run ORDER BY started")
    assert runs == [(25, "ok"), (5, "ok")]

    before = snapshot(db)
    third = run_sync("--config", str(config), "--db", str(db))
    assert third.returncode == 0, third.stderr
    assert snapshot(db) == before
    assert rows(db, "SELECT statements FROM sync_run ORDER BY started DESC LIMIT 1") == [(0,)]


def test_statements_stored_at_the_same_instant_are_all_loaded_once(ralph: Ralph, proxy: Proxy, tmp_path: Path):
    # Ralph sets stored itself on a POST; ties are written into its store directly. Its file backend
    # applies `since` to the timestamp, so each statement's timestamp is its stored time.
    tie = "2026-03-01T10:00:00.250000+00:00"
    later = "2026-03-01T10:00:01.000000+00:00"
    first = [statement(i, stored=tie, timestamp=tie) for i in range(5)]
    ralph.append_stored(first)
    config = write_config(tmp_path / "sync.yaml", f"{proxy.url}/xAPI/", page_size=3)
    db = tmp_path / "roi.duckdb"
    assert run_sync("--config", str(config), "--db", str(db)).returncode == 0
    assert rows(db, "SELECT count(*) FROM lms_statement") == [(5,)]

    # Two more stored at the very same instant show up after that sync, and one later.
    late = [statement(i, stored=tie, timestamp=tie) for i in (5, 6)] + [statement(7, stored=later, timestamp=later)]
    ralph.append_stored(late)
    assert run_sync("--config", str(config), "--db", str(db)).returncode == 0
    ids = rows(db, "SELECT statement_id FROM lms_statement")
    assert sorted(i for (i,) in ids) == sorted(s["id"] for s in first + late)
    assert rows(db, "SELECT statements FROM sync_run ORDER BY started") == [(5,), (3,)]
    assert rows(db, "SELECT count(*) FROM quarantine") == [(0,)]


def test_a_bad_statement_is_quarantined_with_its_page_file_and_line(ralph: Ralph, proxy: Proxy, tmp_path: Path):
    ralph.post([statement(i) for i in range(6)])
    stored = ralph.get(limit="100")["statements"][0]["stored"]
    bad = statement(50, stored=stored, timestamp=stored, verb={"display": {"en-US": "did"}})  # a verb without id
    ralph.append_stored([bad])
    # Where the bad statement sits in the page, as the LRS itself answers the same request.
    page = ralph.get(limit="100", ascending="true")["statements"]
    line = [s["id"] for s in page].index(bad["id"]) + 1
    config = write_config(tmp_path / "sync.yaml", f"{proxy.url}/xAPI/", page_size=100)
    db = tmp_path / "roi.duckdb"

    done = run_sync("--config", str(config), "--db", str(db))
    assert done.returncode == 1
    assert "1 record(s) quarantined" in done.stdout
    q = rows(db, "SELECT source, source_file, source_line, field FROM quarantine")
    assert q == [("xapi", "lms/sync/lrs-main/all-000000.jsonl", line, "verb.id")]
    assert rows(db, "SELECT count(*) FROM lms_statement") == [(6,)]
    assert rows(db, "SELECT quarantined, status FROM sync_run") == [(1, "ok")]


def test_a_storm_of_429_is_waited_out_as_retry_after_asks(ralph: Ralph, proxy: Proxy, tmp_path: Path):
    ralph.post([statement(i) for i in range(4)])
    proxy.faults = [(429, {"Retry-After": "1"}), (429, {"Retry-After": "1"}), (503, {"Retry-After": "0"})]
    config = write_config(tmp_path / "sync.yaml", f"{proxy.url}/xAPI/", backoff=30)
    db = tmp_path / "roi.duckdb"
    started = time.monotonic()
    done = run_sync("--config", str(config), "--db", str(db))
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert elapsed >= 2.0  # two Retry-After: 1; a backoff of 30 s would have taken far longer
    assert elapsed < 25
    assert len(proxy.statements_requests()) == 4
    assert done.stderr.count("attempt ") == 3
    assert rows(db, "SELECT count(*) FROM lms_statement") == [(4,)]


def test_a_server_failing_for_good_fails_the_run_with_its_reason_and_no_secret(ralph: Ralph, proxy: Proxy,
                                                                             tmp_path: Path):
    ralph.post([statement(i) for i in range(3)])
    proxy.always = (500, {})
    config = write_config(tmp_path / "sync.yaml", f"{proxy.url}/xAPI/", retries=2)
    db = tmp_path / "roi.duckdb"
    done = run_sync("--config", str(config), "--db", str(db))
    assert done.returncode == 1
    assert len(proxy.statements_requests()) == 3
    assert "Traceback" not in done.stderr
    (status, error), = rows(db, "SELECT status, error FROM sync_run")
    assert status == "failed"
    assert f"{proxy.url}/xAPI/statements" in error and "500" in error and "after 3 attempts" in error
    everything = done.stdout + done.stderr + repr(rows(db, "SELECT * FROM sync_run")) + repr(
        rows(db, "SELECT * FROM sync_state"))
    assert PASSWORD not in everything
    quality = subprocess.run([sys.executable, "-m", "training_roi.cli", "quality", "--db", str(db), "--json"],
                             env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, capture_output=True, text=True)
    syncs = orjson.loads(quality.stdout)["syncs"]
    assert syncs[0]["source"] == "lrs-main" and syncs[0]["last_success"] is None
    assert syncs[0]["last_status"] == "failed" and PASSWORD not in quality.stdout


def test_wrong_credentials_are_named_without_the_password(ralph: Ralph, tmp_path: Path):
    config = write_config(tmp_path / "sync.yaml", f"{ralph.url}/xAPI/")
    done = run_sync("--config", str(config), "--db", str(tmp_path / "roi.duckdb"),
                    env={"LRS_PASSWORD": "not-" + PASSWORD})
    assert done.returncode == 1
    assert "refused the credentials (401" in done.stderr and "LRS_PASSWORD" in done.stderr
    assert PASSWORD not in done.stdout + done.stderr


def test_quality_shows_the_last_successful_sync_and_its_lag(ralph: Ralph, tmp_path: Path):
    ralph.post([statement(i) for i in range(3)])
    config = write_config(tmp_path / "sync.yaml", f"{ralph.url}/xAPI/")
    db = tmp_path / "roi.duckdb"
    before = time.time()
    assert run_sync("--config", str(config), "--db", str(db)).returncode == 0
    quality = subprocess.run([sys.executable, "-m", "training_roi.cli", "quality", "--db", str(db), "--json"],
                             env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, capture_output=True, text=True)
    (entry,) = orjson.loads(quality.stdout)["syncs"]
    newest = max(s["stored"] for s in ralph.get(limit="100")["statements"])
    assert entry["last_status"] == "ok"
    # The sync finished after ``before``: its lag, counted when asked, is no more than the time since.
    assert 0 <= entry["lag_seconds"] <= time.time() - before
    assert entry["watermark"][:23] == newest[:23]


@pytest.mark.parametrize("load_every", [5, 1000], ids=["page-loaded-before-the-kill", "page-only-staged"])
def test_a_sync_killed_mid_run_then_run_again_leaves_the_warehouse_an_uninterrupted_one_does(
        ralph: Ralph, proxy: Proxy, tmp_path: Path, load_every: int):
    ralph.post([statement(i) for i in range(30)])
    ralph.post([voiding(98, statement(3)["id"])])
    reference = tmp_path / "reference.duckdb"
    direct = write_config(tmp_path / "direct.yaml", f"{ralph.url}/xAPI/", page_size=10, load_every=load_every)
    assert run_sync("--config", str(direct), "--db", str(reference)).returncode == 0

    config = write_config(tmp_path / "sync.yaml", f"{proxy.url}/xAPI/", page_size=10, load_every=load_every)
    db = tmp_path / "roi.duckdb"
    proxy.faults = [None, "hold"]  # the first page answers, the second waits until the sync is killed
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), **credentials()}
    killed = subprocess.Popen([sys.executable, "-m", "training_roi.cli", "sync", "--config", str(config),
                               "--db", str(db)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert proxy.held.wait(120), "the sync never asked for its second page"
    killed.send_signal(signal.SIGKILL)
    killed.wait(30)
    proxy.release.set()
    staged = list((tmp_path / "roi.duckdb.sync" / "lrs-main" / "lms" / "sync" / "lrs-main").glob("*.jsonl"))
    assert len(staged) == (0 if load_every == 5 else 1)

    proxy.log.clear()
    again = run_sync("--config", str(config), "--db", str(db))
    assert again.returncode == 0, again.stderr
    # 31 statements in pages of 10: it went on from the second page (10 + 10 + 1), not from the first.
    assert len(proxy.statements_requests()) == 3
    assert snapshot(db) == snapshot(reference)
    assert rows(db, "SELECT status FROM sync_run ORDER BY started") == [("started, not finished",), ("ok",)]


def test_two_syncs_of_one_warehouse_never_overlap(ralph: Ralph, proxy: Proxy, tmp_path: Path):
    ralph.post([statement(i) for i in range(3)])
    config = write_config(tmp_path / "sync.yaml", f"{proxy.url}/xAPI/")
    db = tmp_path / "roi.duckdb"
    proxy.faults = ["hold"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), **credentials()}
    first = subprocess.Popen([sys.executable, "-m", "training_roi.cli", "sync", "--config", str(config),
                              "--db", str(db)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proxy.held.wait(120)
        second = run_sync("--config", str(config), "--db", str(db))
        assert second.returncode == 2
        assert "another sync of this warehouse is running" in second.stderr
        assert f"pid {first.pid}" in second.stderr
    finally:
        proxy.release.set()
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert rows(db, "SELECT count(*) FROM lms_statement") == [(3,)]


def test_oauth_client_credentials_fetch_a_token_and_keep_the_secret_out_of_errors(ralph: Ralph, proxy: Proxy,
                                                                                  tmp_path: Path):
    import yaml

    ralph.post([statement(i) for i in range(4)])
    secret = "cs-" + PASSWORD
    proxy.oauth = ("roi-client", secret)
    source = {"name": "lrs-oauth", "kind": "lrs", "endpoint": f"{proxy.url}/xAPI/", "version": "2.0.0",
              "auth": {"method": "oauth", "token_url": f"{proxy.url}/oauth/token", "client_id": "roi-client",
                       "client_secret_env": "LRS_CLIENT_SECRET"}}
    config = tmp_path / "sync.yaml"
    config.write_text(yaml.safe_dump({"sources": [source]}), encoding="utf-8")
    db = tmp_path / "roi.duckdb"
    done = run_sync("--config", str(config), "--db", str(db), env={"LRS_CLIENT_SECRET": secret})
    assert done.returncode == 0, done.stderr
    assert rows(db, "SELECT count(*) FROM lms_statement") == [(4,)]
    assert [p for m, p, _ in proxy.log].count("/oauth/token") == 1

    refused = run_sync("--config", str(config), "--db", str(tmp_path / "other.duckdb"),
                       env={"LRS_CLIENT_SECRET": "wrong-" + secret})
    assert refused.returncode == 1
    assert "token endpoint" in refused.stderr and "401" in refused.stderr
    assert secret not in refused.stdout + refused.stderr


def test_every_syncs_again_after_each_interval_until_stopped(ralph: Ralph, proxy: Proxy, tmp_path: Path):
    ralph.post([statement(i) for i in range(3)])
    config = write_config(tmp_path / "sync.yaml", f"{proxy.url}/xAPI/")
    db = tmp_path / "roi.duckdb"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), **credentials()}
    loop = subprocess.Popen([sys.executable, "-m", "training_roi.cli", "sync", "--config", str(config),
                             "--db", str(db), "--every", "1s"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    waits: list[str] = []
    lines: list[str] = []
    second_wait = threading.Event()

    def read() -> None:
        assert loop.stderr is not None
        for line in loop.stderr:
            lines.append(line)
            if "next sync at" in line:
                waits.append(line)
                if len(waits) == 2:
                    second_wait.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while not proxy.statements_requests() and time.monotonic() < deadline:
            time.sleep(0.05)
        ralph.post([statement(3)])  # stored once the first sync has asked: the loop's next sync loads it
        assert second_wait.wait(120), "".join(lines)
    finally:
        loop.send_signal(signal.SIGINT)  # while it waits for its third sync
        loop.wait(60)
        reader.join(10)
    err = "".join(lines)
    assert loop.returncode == 130, err
    assert "stopped (Ctrl-C)" in err and "Traceback" not in err
    assert rows(db, "SELECT count(*) FROM lms_statement") == [(4,)]
    assert rows(db, "SELECT count(*) FROM sync_run WHERE status = 'ok'") == [(2,)]


def test_a_sync_keeps_what_a_file_ingest_loaded_before(ralph: Ralph, tmp_path: Path):
    from tests.builders import write_small_org

    data = write_small_org(tmp_path / "data")
    db = tmp_path / "roi.duckdb"
    ingest = subprocess.run([sys.executable, "-m", "training_roi.cli", "ingest", str(data), "--db", str(db)],
                            env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, capture_output=True, text=True)
    assert ingest.returncode == 0, ingest.stderr
    other = ("crm_user", "crm_contact", "lms_learner", "quarantine")
    before = {t: sorted(rows(db, f"SELECT * FROM {t}"), key=repr) for t in other}
    from_file = sorted(rows(db, "SELECT statement_id, actor_key, source_file, is_voided FROM lms_statement"))
    written = [line for line in (data / "lms" / "statements.jsonl").read_text().splitlines() if line]
    assert len({orjson.loads(line)["id"] for line in written}) == len(from_file)

    seeded = [statement(i) for i in range(3)]
    ralph.post(seeded)
    config = write_config(tmp_path / "sync.yaml", f"{ralph.url}/xAPI/")
    assert run_sync("--config", str(config), "--db", str(db)).returncode == 0
    assert {t: sorted(rows(db, f"SELECT * FROM {t}"), key=repr) for t in other} == before
    after = rows(db, "SELECT statement_id, actor_key, source_file, is_voided FROM lms_statement")
    assert sorted(r for r in after if r[2] == "lms/statements.jsonl") == from_file
    assert {r[0] for r in after if r[2] != "lms/statements.jsonl"} == {s["id"] for s in seeded}
