"""Live sync benchmark: 1M xAPI statements and 1M opportunities pulled from local servers, then 1% changes.

The records come from the simulated 1,000-rep org (``training-roi simulate``, cached in
``benchmarks/.data/``): its statements and opportunities, copied with fresh ids until there are
``--statements`` and ``--opportunities`` of them, each given the time the source stored it (an
LRS's ``stored``, Salesforce's ``SystemModstamp``: spread over a year, two or three records
sharing a time). Two lean servers (``benchmarks/sync_servers.py``: an xAPI LRS and a Salesforce
org, each in a process of its own) serve them from memory.

Each step is ``training-roi sync --config … --db …`` as a user runs it, in a process of its own,
timed from start to exit, with its CPU time and peak resident memory (``VmHWM``; the servers'
memory is not in it):

1. the full sync of the LRS, then of the Salesforce org's opportunities, into a new warehouse;
2. the servers restarted on the changed data: 1% more statements (stored after the others), 1% of
   the opportunities modified (a new amount and ``SystemModstamp``);
3. the incremental sync of each;
4. the same again in a new warehouse as ``sync --every`` runs it: one process per source syncs in
   full, the server is restarted on the changed data during the wait, and the next sync of the same
   process, whose imports are done, is timed.

After each sync the warehouse is checked against figures computed from the served records
alone: statements (distinct ids), statements voided, opportunities, their amounts' sum and the
deals won. ``--repeat`` runs it all again in new warehouses and reports each figure's median.

    python benchmarks/sync.py                                   # 1M statements, 1M opportunities
    python benchmarks/sync.py --statements 20000 --opportunities 20000
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"
SERVERS = HERE / "sync_servers.py"
sys.path.insert(0, str(HERE))
from sync_servers import API, LRS_PASSWORD, LRS_USER, SF_CLIENT_ID  # noqa: E402

START = datetime(2025, 1, 1, tzinfo=UTC)
YEAR_MS = 365 * 86_400_000
BOOLEAN = {"IsDeleted", "IsClosed", "IsWon"}
NUMBER = {"Amount", "Probability"}


def _say(text: str) -> None:
    print(f"… {text}", file=sys.stderr, flush=True)


def _org() -> Path:
    """The simulated 1,000-rep org (simulated once and cached, as the other benchmarks do)."""
    from orgs import org

    return org(1000)


def _stored(ms: int) -> str:
    return (START + timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "Z"


def _statements(n: int, change: float, folder: Path) -> dict[str, int]:
    """Write the LRS's statements (``lrs_full.tsv``, and with the new ones ``lrs_changed.tsv``); return the figures."""
    base: list[dict[str, Any]] = []
    seen: set[str] = set()
    for line in (_org() / "lms" / "statements.jsonl").read_bytes().splitlines():
        try:
            s = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # the simulated export's deliberately malformed lines
        if type(s) is dict and isinstance(s.get("id"), str) and s["id"] not in seen:
            seen.add(s["id"])
            base.append(s)
    new = max(1, int(n * change))
    step = max(1, 2 * YEAR_MS // n)
    ids: list[str] = []
    targets: list[str | None] = []
    with (folder / "lrs_full.tsv").open("wb") as full, (folder / "lrs_new.tsv").open("wb") as extra:
        for k in range(n + new):
            copy, j = divmod(k, len(base))
            s = dict(base[j])

            def fresh(sid: str, copy: int = copy) -> str:
                return sid if copy == 0 else str(uuid.uuid5(uuid.NAMESPACE_URL, f"{copy}:{sid}"))

            s["id"] = fresh(s["id"])
            obj = s.get("object")
            target = None
            if isinstance(obj, dict) and obj.get("objectType") == "StatementRef" and isinstance(obj.get("id"), str):
                s["object"] = {**obj, "id": fresh(obj["id"])}
                target = s["object"]["id"].lower()
            # Two statements share each stored time; the new ones come after every other.
            s["stored"] = _stored(k // 2 * step if k < n else (n // 2 + 1) * step + (k - n) * 1000)
            (full if k < n else extra).write(s["stored"].encode() + b"\t" + orjson.dumps(s) + b"\n")
            ids.append(s["id"].lower())
            targets.append(target)
    with (folder / "lrs_changed.tsv").open("wb") as out:
        for part in ("lrs_full.tsv", "lrs_new.tsv"):
            with (folder / part).open("rb") as fh:
                shutil.copyfileobj(fh, out)
    (folder / "lrs_new.tsv").unlink()

    def figures(count: int) -> dict[str, int]:
        served = set(ids[:count])
        voiding = {i for i, t in zip(ids[:count], targets[:count], strict=True) if t is not None}
        voided = {t for t in targets[:count] if t is not None and t in served and t not in voiding}
        return {"statements": len(served), "voided": len(voided)}

    return {**{f"full_{k}": v for k, v in figures(n).items()},
            **{f"changed_{k}": v for k, v in figures(n + new).items()}, "new_statements": new}


def _typed(name: str, value: str) -> Any:
    """A CSV cell as the REST API types the field."""
    if value == "":
        return None
    if name in BOOLEAN:
        return value.lower() == "true"
    if name in NUMBER:
        return float(value)
    if name == "CreatedDate":
        return value[:23] + "+0000"
    return value


def _opportunities(n: int, change: float, folder: Path) -> dict[str, Any]:
    """Write the org's opportunities (``sf_full.tsv``, ``sf_changed.tsv``); return the figures."""
    from training_roi.ingest.sources import SOURCES

    with (_org() / "crm" / "Opportunity.csv").open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        header = reader.fieldnames or []
    fields = [f.name for f in SOURCES["Opportunity"].fields if f.name in header]
    every = max(1, round(1 / change))
    step = max(1, 3 * YEAR_MS // 1000 // n)
    last = (n // 3 + 1) * step
    total, won, changed_total, modified = Decimal(0), 0, Decimal(0), []
    with (folder / "sf_full.tsv").open("wb") as full:
        for k in range(n):
            row = rows[k % len(rows)]
            rid = row["Id"] if k < len(rows) else f"006{k:015d}"
            record: dict[str, Any] = {"attributes": {"type": "Opportunity", "url": f"{API}/sobjects/Opportunity/{rid}"}}
            record |= {f: _typed(f, row[f]) for f in fields} | {"Id": rid}
            amount = Decimal(row["Amount"] or 0)
            total += amount
            won += row["IsWon"] == "true"
            if k % every == every // 2:  # modified later: a new amount
                modified.append({**record, "Amount": float(amount + 1000)})
                changed_total += 1000
            stamp = (START + timedelta(seconds=k // 3 * step)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
            full.write(stamp.encode() + b"\t" + orjson.dumps({**record, "SystemModstamp": stamp}) + b"\n")
    ids = {r["Id"] for r in modified}
    with (folder / "sf_full.tsv").open("rb") as fh, (folder / "sf_changed.tsv").open("wb") as out:
        for line in fh:
            if orjson.loads(line.split(b"\t", 1)[1])["Id"] not in ids:
                out.write(line)
        for j, record in enumerate(modified):  # modified three a second, after every other
            stamp = (START + timedelta(seconds=last + j // 3)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
            out.write(stamp.encode() + b"\t" + orjson.dumps({**record, "SystemModstamp": stamp}) + b"\n")
    return {"opportunities": n, "full_amount": str(total), "changed_amount": str(total + changed_total),
            "won": won, "modified": len(modified)}


def build(statements: int, opportunities: int, change: float) -> Path:
    """Write (once, cached) the served records of both sources and the figures the warehouse must hold."""
    folder = DATA / f"sync_{statements}_{opportunities}_{change:g}"
    if (folder / "expected.json").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    _say(f"writing {statements:,} statements and {opportunities:,} opportunities to serve")
    expected = {**_statements(statements, change, folder), **_opportunities(opportunities, change, folder)}
    (folder / "expected.json").write_text(json.dumps(expected, indent=1))
    return folder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One of the lean servers, in a process of its own, on a fixed loopback port."""

    def __init__(self, kind: str, port: int) -> None:
        self.kind, self.port = kind, port
        self.process: subprocess.Popen[str] | None = None

    def start(self, data: Path) -> None:
        """Start serving ``data``; return once the server listens."""
        self.process = subprocess.Popen([sys.executable, str(SERVERS), self.kind, str(data), str(self.port)],
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the {self.kind} server did not start")

    def stop(self) -> None:
        """Stop the server (when it runs)."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


def _config(path: Path, kind: str, port: int) -> Path:
    url = f"http://127.0.0.1:{port}"
    if kind == "lrs":
        source: dict[str, Any] = {
            "name": "lrs", "kind": "lrs", "endpoint": f"{url}/xAPI/", "version": "1.0.3",
            "auth": {"method": "basic", "username": LRS_USER, "password_env": "BENCH_LRS_PASSWORD"}}
    else:
        source = {"name": "sf", "kind": "salesforce", "instance_url": url, "api_version": API.rsplit("v", 1)[1],
                  "objects": ["Opportunity"],
                  "auth": {"grant": "client_credentials", "client_id": SF_CLIENT_ID,
                           "client_secret_env": "BENCH_SF_SECRET"}}
    path.write_text(json.dumps({"sources": [source]}))  # JSON is YAML
    return path


_RUN = """
import atexit, json, runpy, sys, time

account = sys.argv[1]
start = time.perf_counter()
import training_roi.cli  # noqa: F401  (timed apart: the product and its libraries loaded)
loaded = time.perf_counter() - start

def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            with open(account, "w") as out:
                json.dump({"peak_kib": int(line.split()[1]), "startup": loaded}, out)

atexit.register(peak)
sys.argv = ["training-roi", *sys.argv[2:]]
runpy.run_module("training_roi.cli", run_name="__main__")
"""
"""``training-roi sync`` as ``python -m training_roi.cli`` runs it, writing at exit its peak resident memory
(``VmHWM``: ``ru_maxrss`` would count the memory of the process that started it) and how long the
imports took (a fixed cost of every command, which ``--every`` pays once)."""


def _sync(config: Path, db: Path, log: Path) -> dict[str, Any]:
    """Run ``training-roi sync`` once in a process of its own; its wall time, CPU time, peak memory and account."""
    from sync_servers import SF_CLIENT_SECRET

    env = {**os.environ, "BENCH_LRS_PASSWORD": LRS_PASSWORD, "BENCH_SF_SECRET": SF_CLIENT_SECRET}
    account = log.with_suffix(".peak")
    with (log.with_suffix(".json")).open("w") as out, log.open("w") as err:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", _RUN, str(account), "sync", "--config", str(config),
                                 "--db", str(db), "--json"], stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"the sync failed: {log.read_text()[-2000:]}{log.with_suffix('.json').read_text()[-2000:]}")
    info = json.loads(log.with_suffix(".json").read_text())["sync"]
    rows = sum(s["statements"] for s in info["sources"])
    measured = json.loads(account.read_text())
    return {"seconds": seconds, "startup": measured["startup"], "peak_mib": measured["peak_kib"] / 1024,
            "rows": rows, "cpu_seconds": usage.ru_utime + usage.ru_stime}


EVERY = 20.0
"""Seconds between the syncs of ``sync --every``: longer than a server takes to restart on the changed data."""


def _cpu(pid: int) -> float:
    """CPU seconds (user and system) a live process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _sync_every(config: Path, db: Path, log: Path, change: Callable[[], None]) -> dict[str, Any]:
    """``training-roi sync --every`` as a scheduler runs it: one process, a full sync, the change, the next sync.

    The second sync is timed from the end of the wait (``EVERY`` seconds after the first sync printed
    when the next would start) to the moment the second printed it: the imports, and nothing else,
    are paid once. Returns the second sync's wall and CPU seconds and its account.
    """
    from sync_servers import SF_CLIENT_SECRET

    env = {**os.environ, "BENCH_LRS_PASSWORD": LRS_PASSWORD, "BENCH_SF_SECRET": SF_CLIENT_SECRET}
    out_path = log.with_suffix(".json")
    with out_path.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "training_roi.cli", "sync", "--config", str(config),
                                 "--db", str(db), "--every", f"{EVERY:.0f}s", "--json"],
                                stdout=out, stderr=subprocess.PIPE, text=True, env=env)
        assert proc.stderr is not None
        marks: list[tuple[float, float]] = []
        with log.open("w") as err:
            for line in proc.stderr:
                err.write(line)
                if "next sync at" not in line:
                    continue
                marks.append((time.perf_counter(), _cpu(proc.pid)))
                if len(marks) == 1:
                    change()
                else:
                    break
        # SIGTERM, as a service manager stops it (a job started in the background ignores Ctrl-C's SIGINT).
        proc.terminate()
        proc.wait(30)
    if len(marks) < 2:
        raise RuntimeError(f"sync --every stopped before its second sync: {log.read_text()[-2000:]}")
    decoder, text, docs = json.JSONDecoder(), out_path.read_text(), []
    at = 0
    while at < len(text.rstrip()):
        doc, at = decoder.raw_decode(text, text.index("{", at))
        docs.append(doc)
    info = docs[1]["sync"]
    if not info["ok"] or any(x["quarantined"] for x in info["sources"]):
        raise RuntimeError(f"the second sync of sync --every did not load cleanly: {info}")
    return {"seconds": marks[1][0] - marks[0][0] - EVERY, "cpu_seconds": marks[1][1] - marks[0][1],
            "rows": sum(x["statements"] for x in info["sources"])}


def _check(db: Path, expected: dict[str, Any], phase: str) -> None:
    """The warehouse holds what was served: statements, voided ones, opportunities, amounts, deals won."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        statements, voided = con.execute(
            "SELECT count(DISTINCT statement_id), count(DISTINCT statement_id) FILTER (WHERE is_voided) "
            "FROM lms_statement").fetchone() or (0, 0)
        opportunities, amount, won = con.execute(
            "SELECT count(*), sum(amount), count(*) FILTER (WHERE is_won) FROM crm_opportunity").fetchone() or (0, 0, 0)
        quarantined = (con.execute("SELECT count(*) FROM quarantine").fetchone() or (0,))[0]
    finally:
        con.close()
    found = {"statements": statements, "voided": voided, "opportunities": opportunities,
             "amount": str(Decimal(amount or 0)), "won": won, "quarantined": quarantined}
    wanted = {"statements": expected[f"{phase}_statements"], "voided": expected[f"{phase}_voided"],
              "opportunities": expected["opportunities"], "amount": str(Decimal(expected[f"{phase}_amount"])),
              "won": expected["won"], "quarantined": 0}
    if {k: Decimal(str(v)) for k, v in found.items()} != {k: Decimal(str(v)) for k, v in wanted.items()}:
        raise AssertionError(f"after the {phase} sync the warehouse holds {found}, expected {wanted}")
    _say(f"{phase} sync checked: {statements:,} statements ({voided:,} voided), {opportunities:,} opportunities, "
         f"amount {Decimal(amount or 0):,}, won {won:,}")


def run_once(folder: Path, work: Path) -> dict[str, dict[str, Any]]:
    """One full sync of both sources into a new warehouse, the changes, one incremental sync of each."""
    expected = json.loads((folder / "expected.json").read_text())
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    db = work / "roi.duckdb"
    servers = {"lrs": Server("lrs", _free_port()), "salesforce": Server("salesforce", _free_port())}
    configs = {k: _config(work / f"{k}.yaml", k, s.port) for k, s in servers.items()}
    data = {"lrs": "lrs", "salesforce": "sf"}
    out: dict[str, dict[str, Any]] = {}
    try:
        for phase in ("full", "changed"):
            for kind, server in servers.items():
                server.stop()
                server.start(folder / f"{data[kind]}_{phase}.tsv")
            for kind in servers:
                step = f"{'full' if phase == 'full' else 'incremental'} {kind}"
                _say(f"{step} sync")
                out[step] = r = _sync(configs[kind], db, work / f"{step.replace(' ', '-')}.log")
                _say(f"  {r['rows']:,} rows in {r['seconds']:.1f} s ({r['rows'] / r['seconds']:,.0f}/s), "
                     f"peak {r['peak_mib']:,.0f} MiB")
            _check(db, expected, phase)
        # The same again as ``sync --every`` runs it: one process per source, whose second sync follows the change.
        every_db = work / "every.duckdb"
        for kind, server in servers.items():
            server.stop()
            server.start(folder / f"{data[kind]}_full.tsv")
        for kind, server in servers.items():
            step = f"incremental {kind}, within sync --every"
            _say(f"{step}: the full sync first")

            def change(server: Server = server, kind: str = kind) -> None:
                server.stop()
                server.start(folder / f"{data[kind]}_changed.tsv")

            out[step] = r = _sync_every(configs[kind], every_db, work / f"every-{kind}.log", change)
            _say(f"  {r['rows']:,} rows in {r['seconds']:.1f} s ({r['rows'] / r['seconds']:,.0f}/s)")
        _check(every_db, expected, "changed")
    finally:
        for server in servers.values():
            server.stop()
    return out


def main() -> None:
    """Build the served data, run the syncs ``--repeat`` times, print a Markdown table of the medians."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--statements", type=int, default=1_000_000)
    parser.add_argument("--opportunities", type=int, default=1_000_000)
    parser.add_argument("--change", type=float, default=0.01, help="share of records new or modified (0.01: 1%%)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--work", type=Path, default=DATA / "sync_run", help="where the warehouse is written")
    args = parser.parse_args()
    folder = build(args.statements, args.opportunities, args.change)
    runs = []
    for i in range(args.repeat):
        _say(f"run {i + 1} of {args.repeat}")
        runs.append(run_once(folder, args.work))
    steps = list(runs[0])
    med = {s: {k: statistics.median(r[s][k] for r in runs) for k in runs[0][s]} for s in steps}
    print(json.dumps({"runs": runs, "median": med}), file=sys.stderr)
    print("| sync | rows | seconds | rows/s | CPU (s) | peak MiB | of which start-up (s) | incremental ÷ full "
          "| the same without start-up |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for s in steps:
        m = med[s]
        full = med.get(s.split(",")[0].replace("incremental", "full"))
        # Within sync --every: no start-up, and the process's peak is the full sync's.
        if "peak_mib" not in m and full is not None:
            print(f"| {s} | {m['rows']:,.0f} | {m['seconds']:.1f} | {m['rows'] / m['seconds']:,.0f} | "
                  f"{m['cpu_seconds']:.1f} | — | — | {m['seconds'] / full['seconds']:.1%} | |")
            continue
        ratio = own = ""
        if full is not None and full is not m:
            ratio = f"{m['seconds'] / full['seconds']:.1%}"
            own = f"{(m['seconds'] - m['startup']) / (full['seconds'] - full['startup']):.1%}"
        print(f"| {s} | {m['rows']:,.0f} | {m['seconds']:.1f} | {m['rows'] / m['seconds']:,.0f} | "
              f"{m['cpu_seconds']:.1f} | {m['peak_mib']:,.0f} | {m['startup']:.1f} | {ratio} | {own} |")


if __name__ == "__main__":
    main()
