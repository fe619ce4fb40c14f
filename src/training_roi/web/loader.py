"""Ingesting from the server: the archives admins sent, loaded one at a time by ``training-roi ingest`` itself.

An archive accepted by :mod:`training_roi.web.ingests` is unpacked into a folder of the server's own
and queued here. One worker thread takes the ingests in the order they came and runs, for each, the
command line's ingest in a process of its own — ``training-roi ingest FOLDER --db WAREHOUSE --json``:
the same validation, quarantine, linking and ``ingest_run`` rows as an ingest typed at a terminal,
and the warehouse written as any other process writes it. The server itself never opens the
warehouse for writing: it keeps answering from its last snapshot while the ingest writes, and takes a
new one when the ingest has finished (:mod:`training_roi.web.snapshot`). Opening the warehouse waits,
as every ingest does, for another process's lock (a snapshot being copied, a load from the command line)
before it gives up and says who holds it.

The process's progress lines (``… reading Opportunity: 12,000 rows``) are the ingest's progress in
the state file; its JSON account is the outcome: rows read, loaded, quarantined and duplicate per
source, and warnings — a source refused (the command's exit status 1) or rows quarantined are said,
never a silent success. A failure is the command's own message (exit status 2), or one line naming
an unexpected error, whose whole account goes to the server's log.

When the server stops, the ingests still queued or running are marked failed (:data:`STOPPED`) and
the running process is stopped as Ctrl-C stops it (the sources read in full are loaded, the one being
read is discarded); a server that was killed does the same when it next starts. They are not run again
on their own: whoever sent the archive decides whether to send it again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import training_roi
from training_roi._format import plural
from training_roi.web import ingest_records as records
from training_roi.web.archive import Unpacked
from training_roi.web.ingest_records import IngestRecord, Outcome
from training_roi.web.store import Store

__all__ = ["STOPPED", "Loader", "outcome_of"]

log = logging.getLogger(__name__)

STOPPED = ("the server stopped before the ingest finished: the sources read in full before the stop are loaded and "
           "the rest is not; send the archive again to load it all and link learners")
"""The error of an ingest that was queued or running when the server stopped."""

STOP_WAIT = 10.0
"""Seconds a stopped ingest's process has to discard the source it was reading before it is killed."""

_PROGRESS_EVERY = 0.5
"""Seconds between two writes of one step's progress (a large file reports its rows many times a second)."""


_KEPT_LINES = 200
"""Lines of the process's standard error (other than its progress) kept for its error message and the log."""


@dataclass(frozen=True)
class _Job:
    id: int
    file: str
    sent_by: str | None
    unpacked: Unpacked


def _counts(source: dict[str, Any]) -> dict[str, Any]:
    keys = ("source", "table", "files", "rows_read", "rows_loaded", "rows_quarantined", "rows_duplicate", "status")
    return {k: source[k] for k in keys}


def outcome_of(account: dict[str, Any]) -> Outcome:
    """The outcome kept for an ingest, from the JSON ``training-roi ingest --json`` prints.

    ``ok`` is what the command's exit status says (every source present was read); the warnings say
    each source refused and the rows quarantined, so that neither passes for a clean load.
    """
    sources = [_counts(s) for s in account["ingest"]["sources"]]
    quarantined = sum(s["rows_quarantined"] for s in sources)
    warnings = [f"{s['source']}: {s['status']}" for s in sources if s["status"] != "ok"]
    if quarantined:
        warnings.append(f"{plural(quarantined, 'row')} quarantined: the quarantine lists each with its reason")
    link = account["link"]
    return {"ok": all(s["status"] == "ok" for s in sources), "run_id": account["ingest"]["run_id"],
            "sources": sources, "rows_read": sum(s["rows_read"] for s in sources),
            "rows_loaded": sum(s["rows_loaded"] for s in sources), "quarantined": quarantined,
            "duplicates": sum(s["rows_duplicate"] for s in sources), "warnings": warnings,
            "notes": [n for s in account["ingest"]["sources"] for n in s["notes"]],
            "linked": f"{link['linked_users'] + link['linked_contacts']:,} of "
                      f"{plural(link['identities'], 'learner identity', 'learner identities')} linked to the CRM"}


def _summary(outcome: Outcome) -> str:
    """An outcome in a line: what was loaded, quarantined, refused."""
    refused = [s["source"] for s in outcome["sources"] if s["status"] != "ok"]
    return (f"{plural(outcome['rows_loaded'], 'row')} loaded from {plural(len(outcome['sources']), 'source')}, "
            f"{outcome['quarantined']:,} quarantined" + (f"; refused: {', '.join(refused)}" if refused else ""))


class Loader:
    """Runs the queued ingests of a store into the warehouse ``db``, one at a time, on a worker thread of its own.

    The thread starts with the first ingest; ``folder`` holds the archives' unpacked folders (each
    deleted when its ingest ends, and any left by a killed server when the next one starts).
    """

    def __init__(self, store: Store, db: Path, folder: Path) -> None:
        self.store, self.db, self.folder = store, db.resolve(), folder.resolve()
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._running: _Job | None = None
        self._process: subprocess.Popen[str] | None = None
        self._stopping = threading.Event()
        records.ensure_table(store)
        self.folder.mkdir(parents=True, exist_ok=True)

    def start(self) -> list[IngestRecord]:
        """Mark the ingests a previous server left unfinished as failed, delete their folders; those ingests."""
        for left in self.folder.iterdir():
            if left.is_dir():
                shutil.rmtree(left, ignore_errors=True)
            else:
                left.unlink(missing_ok=True)
        return self._fail_unfinished()

    def _fail_unfinished(self) -> list[IngestRecord]:
        """Mark the ingests queued or running failed (:data:`STOPPED`), each with its audit line."""
        failed = records.fail_unfinished(self.store, STOPPED)
        for record in failed:
            self.store.audit("ingest", user=record.sent_by, target=f"ingest {record.id}",
                             detail=f"{record.file}: failed: {STOPPED}")
        return failed

    @property
    def stopping(self) -> bool:
        """Whether the server is stopping (no ingest is taken any more)."""
        return self._stopping.is_set()

    def submit(self, unpacked: Unpacked, file: str, size: int, sent_by: str | None) -> IngestRecord:
        """Queue the ingest of an unpacked archive (``file``, ``size`` bytes); the loader deletes its folder."""
        with self._lock:
            if self._stopping.is_set():
                shutil.rmtree(unpacked.folder, ignore_errors=True)
                raise RuntimeError("the server is stopping")
            ahead = self._jobs.qsize() + (self._running is not None)
            record = records.queue(self.store, file, size, sent_by, progress="queued" if not ahead else
                                   f"queued behind {plural(ahead, 'other ingest')}")
            self._jobs.put(_Job(record.id, file, sent_by, unpacked))
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="training-roi-ingests", daemon=True)
                self._thread.start()
        return record

    def stop(self) -> None:
        """Stop taking ingests; mark every queued or running one failed (:data:`STOPPED`); stop the running process.

        The process is stopped as Ctrl-C stops the command and given :data:`STOP_WAIT` seconds to
        discard the source it was reading, then killed.
        """
        with self._lock:
            self._stopping.set()
            self._jobs.put(None)
            process = self._process
        self._fail_unfinished()
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=STOP_WAIT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            if self._stopping.is_set():
                shutil.rmtree(job.unpacked.folder, ignore_errors=True)
                continue
            self._running = job
            try:
                self._run(job)
            except Exception:  # the store itself failed: the thread must keep serving the next ingests
                log.exception("ingest %s: its status could not be stored", job.id)
            finally:
                self._running = None
                shutil.rmtree(job.unpacked.folder, ignore_errors=True)

    def _command(self, job: _Job) -> list[str]:
        return [sys.executable, "-m", "training_roi.cli", "ingest", str(job.unpacked.data), "--db", str(self.db),
                "--json"]

    @staticmethod
    def _environment() -> dict[str, str]:
        """The process's environment: this server's, its package found first, no colour, lines never wrapped."""
        env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
        package = str(Path(training_roi.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join([package, *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])])
        env.update({"NO_COLOR": "1", "COLUMNS": "1000", "PYTHONUNBUFFERED": "1"})
        return env

    def _run(self, job: _Job) -> None:
        started = time.monotonic()
        begun = records.update(self.store, job.id, status="running", progress="starting `training-roi ingest`")
        if begun is None or begun.status != "running":  # marked failed meanwhile: the server is stopping
            return
        output = job.unpacked.folder / "account.json"
        with output.open("w", encoding="utf-8") as stdout:
            with self._lock:
                if self._stopping.is_set():
                    return
                self._process = process = subprocess.Popen(
                    self._command(job), stdout=stdout, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                    encoding="utf-8", errors="replace", cwd=job.unpacked.folder, env=self._environment(),
                    start_new_session=True)
            said = self._follow(job, process)
            code = process.wait()
        with self._lock:
            self._process = None
        if self._stopping.is_set():
            return
        account = self._account(output)
        if account is not None and code in (0, 1):
            outcome = outcome_of(account)
            records.finish(self.store, job.id, outcome, f"done in {time.monotonic() - started:,.1f} seconds")
            self._audit(job, "done: " + _summary(outcome))
            return
        errors = [line.removeprefix("error: ") for line in said if line.startswith("error: ")]
        if code == 2 and errors:
            message = " ".join(errors)
        else:
            log.error("ingest %s (%s): the command ended with status %s:\n%s", job.id, job.file, code, "\n".join(said))
            last = next((line for line in reversed(said) if line.strip()), "")[:200]
            message = (f"an unexpected error stopped the ingest ({last or f'exit status {code}'}); the server's log "
                       "has the details")
        records.update(self.store, job.id, status="failed", error=message)
        self._audit(job, f"failed: {message}")

    def _follow(self, job: _Job, process: subprocess.Popen[str]) -> list[str]:
        """Read the process's standard error to its end: progress lines into the state file; the last other lines."""
        said: deque[str] = deque(maxlen=_KEPT_LINES)
        sources, last, written = job.unpacked.sources, "", 0.0
        assert process.stderr is not None
        for raw in process.stderr:
            line = raw.rstrip("\n")
            if not line.startswith("… "):
                said.append(line)
                continue
            what = line.removeprefix("… ")
            step = what.split(": ", 1)[0]
            now = time.monotonic()
            if step == last and now - written < _PROGRESS_EVERY:
                continue
            name = step.removeprefix("reading ")
            if name in sources:
                what = f"{what} (source {sources.index(name) + 1:,} of {len(sources):,})"
            last, written = step, now
            if not self._stopping.is_set():
                records.update(self.store, job.id, progress=what)
        return list(said)

    @staticmethod
    def _account(output: Path) -> dict[str, Any] | None:
        """The command's JSON account, or None when it printed none (it failed before the end)."""
        try:
            found = json.loads(output.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return found if isinstance(found, dict) and "ingest" in found else None

    def _audit(self, job: _Job, detail: str) -> None:
        self.store.audit("ingest", user=job.sent_by, target=f"ingest {job.id}", detail=f"{job.file}: {detail}"[:500])
