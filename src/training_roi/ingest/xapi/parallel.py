"""Large JSON-lines files read in blocks of whole lines, by worker processes when the machine has several CPUs.

An LRS export of a million statements is one JSON-lines file; parsing it is CPU-bound Python,
so each block of about 16 MiB is read into rows on its own (:func:`read_block`) and the blocks
of a file of ``PARALLEL_MIN_BYTES`` or more go to one forked worker per CPU (:class:`Workers`).
The reader merges the blocks in file order.
"""

from __future__ import annotations

import collections
import itertools
import multiprocessing
import os
import sys
import warnings
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from training_roi.ingest.xapi.framing import BOM, utf8_problem
from training_roi.ingest.xapi.rows import Rows, gc_paused
from training_roi.warehouse.batch import QuarantineRow

__all__ = ["MAX_WORKERS", "PARALLEL_MIN_BYTES", "Block", "Workers", "read_block", "worker_count"]

PARALLEL_MIN_BYTES = 32 << 20
"""A JSON-lines file this large or larger is read by worker processes, a smaller one in this one."""
MAX_WORKERS = 8


@dataclass
class Block:
    """What one block of JSON lines yielded; its line numbers count from the block's start."""

    batches: list[pa.RecordBatch]
    quarantine: list[QuarantineRow]
    read: int
    loaded: int
    duplicate: int
    newlines: int
    utf8_problem: str | None = None
    fingerprints: dict[str, int] = field(default_factory=dict)


def read_block(path: str, rel: str, start: int, end: int, arrow_schema: pa.Schema) -> Block:
    """Read the JSON lines in bytes ``start`` to ``end`` of a file (in a worker process or not)."""
    with gc_paused():
        with open(path, "rb") as fh:
            fh.seek(start)
            data = fh.read(end - start)
        newlines = data.count(b"\n")
        problem = utf8_problem(data, start)
        if problem is not None:
            return Block([], [], 0, 0, 0, newlines, problem)
        if start == 0:
            data = data.removeprefix(BOM)
        rows = Rows(arrow_schema)
        rows.lines(enumerate(data.split(b"\n"), start=1), rel)
        rows.flush()
        return Block(
            rows.batches, rows.quarantine, rows.read, rows.loaded, rows.duplicate, newlines,
            fingerprints=rows.seen,
        )


_BLOCK_TIMEOUT_S = 300.0
"""A block of 16 MiB parses in about a second; five minutes means a worker is stuck."""


class Workers:
    """Reads the blocks of large JSON-lines files in worker processes, one per CPU.

    Parsing is CPU-bound Python, so a second core halves the time of a large export. Workers
    are forked (Linux only): no interpreter start, no re-import of the caller's main module
    (a fork server or spawn would demand an ``if __name__ == "__main__"`` guard of every
    script that ingests), nothing to pickle but the results. The caller holds idle thread
    pools (DuckDB, Arrow, Polars) when it forks; a worker only parses bytes into Arrow and
    touches none of their state. Should a worker still hang or die, the block times out and
    the rest of the file is read in this process, so an ingest never waits forever.

    ``count`` is the number of processes, by default :func:`worker_count`; with 1 every block is
    read in this process.
    """

    def __init__(self, count: int | None = None) -> None:
        self.count = worker_count() if count is None else count
        self.executor: ProcessPoolExecutor | None = None

    def read(
        self, path: Path, rel: str, spans: list[tuple[int, int]], arrow_schema: pa.Schema
    ) -> Iterator[Block]:
        """Yield the blocks at byte ranges ``spans`` of a file, in file order.

        Worker processes read them when there are several workers and the file has
        ``PARALLEL_MIN_BYTES`` or more; otherwise, or once a worker failed, this process does.
        """
        done = 0
        size = spans[-1][1] if spans else 0
        if self.count > 1 and len(spans) > 1 and size >= PARALLEL_MIN_BYTES:
            try:
                with warnings.catch_warnings():
                    # Python 3.12+ warns about forking a process that has threads (the first
                    # submit forks); see the class docstring for why these workers are safe.
                    warnings.simplefilter("ignore", DeprecationWarning)
                    executor = self._start()
                    # A few blocks ahead of the one being merged, not all: read blocks wait in
                    # memory until merged, so workers faster than the merge would pile them up.
                    ahead = iter(spans)
                    futures = collections.deque(
                        executor.submit(read_block, str(path), rel, s, e, arrow_schema)
                        for s, e in itertools.islice(ahead, 2 * self.count)
                    )
                while futures:
                    block = futures.popleft().result(timeout=_BLOCK_TIMEOUT_S)
                    for s, e in itertools.islice(ahead, 1):
                        futures.append(executor.submit(read_block, str(path), rel, s, e, arrow_schema))
                    done += 1
                    yield block
                return
            except (OSError, BrokenProcessPool, FuturesTimeout) as exc:
                self.count = 1  # no processes to be had, or a stuck one: read the rest here
                self.close(kill=isinstance(exc, FuturesTimeout))
        for s, e in spans[done:]:
            yield read_block(str(path), rel, s, e, arrow_schema)

    def warm(self) -> None:
        """Start the worker processes now, before this process starts threads of its own.

        A file's rows may be handed to a writer thread as they are read (the warehouse's
        background writes); the workers are forked before that thread exists, so none of its
        locks can be copied half-held into a worker.
        """
        if self.count <= 1:
            return
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                self._start().submit(int).result(timeout=_BLOCK_TIMEOUT_S)
        except (OSError, BrokenProcessPool, FuturesTimeout):
            self.count = 1
            self.close(kill=True)

    def _start(self) -> ProcessPoolExecutor:
        if self.executor is None:
            context = multiprocessing.get_context("fork")
            self.executor = ProcessPoolExecutor(self.count, mp_context=context)
        return self.executor

    def close(self, *, kill: bool = False) -> None:
        """Shut the worker processes down (end them at once with ``kill``)."""
        if self.executor is not None:
            if kill:  # a stuck worker would never finish: end it rather than wait (3.11 has no API)
                for process in list(getattr(self.executor, "_processes", {}).values()):
                    process.kill()
            self.executor.shutdown(wait=not kill, cancel_futures=True)
            self.executor = None


def worker_count() -> int:
    """Return how many worker processes to use: one per CPU (at most ``MAX_WORKERS``) where forking works, else 1."""
    if sys.platform != "linux" or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, min(len(os.sched_getaffinity(0)), MAX_WORKERS))

