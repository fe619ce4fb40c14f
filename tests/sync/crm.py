"""What the tests of the CRM sources share: a local server in a thread, one sync, and the tables compared.

A CRM's stand-in (``salesforce_server``, ``hubspot_server``) is a Starlette app over a state object
with ``url`` and ``release``, and an ``export(folder)`` that writes its current records as the
contract's files: the tests sync it, ingest that export, and compare the two warehouses table by table.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
import yaml
from starlette.applications import Starlette

from tests.sync.conftest import ROOT
from training_roi.errors import SyncConfigError
from training_roi.ingest.folder import ingest_folder
from training_roi.sync import load_config, open_sources, sync
from training_roi.warehouse.connection import connect


async def pause(seconds: float) -> None:
    """Wait without holding the server's loop (a late answer, a held request)."""
    await asyncio.sleep(seconds)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(state: Any, application: Starlette, what: str) -> Iterator[Any]:
    """Run ``application`` on a free loopback port in a thread until the generator is closed; ``state.url`` is set."""
    port = _free_port()
    state.url = f"http://127.0.0.1:{port}"
    server = uvicorn.Server(uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the {what} test server did not start")
        time.sleep(0.05)
    try:
        yield state
    finally:
        state.release.set()
        server.should_exit = True
        thread.join(10)


def sync_once(config: Path, db: Path, sleeps: list[float] | None = None) -> Any:
    """One sync, in this process, as the command runs it; the waits before retries go to ``sleeps``."""
    waits = sleeps if sleeps is not None else []
    sources = open_sources(load_config(config), sleep=waits.append)
    con = connect(str(db))
    try:
        return sync(con, sources, db.with_name(db.name + ".sync"))
    finally:
        for s in sources:
            s.close()
        con.disconnect()


def crm_tables(db: Path, names: Iterator[str] | tuple[str, ...]) -> dict[str, list[tuple[Any, ...]]]:
    """The rows of each table named, without where they were read from, sorted."""
    con = connect(str(db), create=False)
    try:
        out = {}
        for t in names:
            rows = con.sql(f"SELECT * EXCLUDE (source_file, source_line) FROM {t}").to_pyarrow().to_pylist()
            out[t] = sorted((tuple(r.values()) for r in rows), key=repr)
        return out
    finally:
        con.disconnect()


def file_ingest(account: Any, folder: Path, names: tuple[str, ...]) -> dict[str, list[tuple[Any, ...]]]:
    """The tables named as a file ingest of the account's current records, exported, fills them."""
    account.export(folder)
    db = folder / "files.duckdb"
    con = connect(str(db))
    try:
        ingest_folder(folder, con)
    finally:
        con.disconnect()
    return crm_tables(db, names)


def sql(db: Path, query: str) -> Any:
    """The rows of a query on the warehouse, as dictionaries."""
    con = connect(str(db), create=False)
    try:
        return con.sql(query).to_pyarrow().to_pylist()
    finally:
        con.disconnect()


def sync_cli(config: Path, db: Path, env: dict[str, str], *args: str, command: str = "sync") -> subprocess.Popen[str]:
    """``training-roi sync`` (or ``command``) in a process of its own, as a user runs it, with ``env`` added."""
    full = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "200", **env}
    return subprocess.Popen([sys.executable, "-m", "training_roi.cli", command, "--config", str(config), "--db",
                             str(db), *args], env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill_while_held(account: Any, proc: subprocess.Popen[str]) -> None:
    """Kill ``proc`` (``kill -9``) while the account holds one of its requests, then let the account answer again."""
    assert account.held.wait(120), proc.communicate(timeout=5)
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    account.release.set()


def config_source(folder: Path, source: dict[str, Any]) -> Any:
    """Load a ``sync.yaml`` holding one source, as written; its configuration (or the SyncConfigError)."""
    path = folder / "sync.yaml"
    path.write_text(yaml.safe_dump({"sources": [source]}), encoding="utf-8")
    try:
        return load_config(path).sources[0]
    except SyncConfigError as exc:
        return exc
