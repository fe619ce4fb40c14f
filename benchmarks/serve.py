"""Server load benchmark: concurrent users browsing the 20k-rep org's dashboard and API, with a load mid-run.

Uses the warehouse `benchmarks/ingest.py` leaves in `benchmarks/.data/` (run it first), copied to a
temporary folder so the load written mid-run changes nothing of it. It answers the default study
once (`training-roi report`, as `benchmarks/report.py` does), starts `training-roi serve` on the
loopback address with that result, and warms each page once (the first request of a page computes
its figures for the snapshot; the times are reported apart). Then ``--users`` users browse for
``--seconds``: half of them through the pages (signed in), half through the API (Bearer tokens),
each looping over programs → study → KPIs by month (org, team) → drill-down → data quality (the
API users read a study's runs, not its whole result.json: a 20k-rep org's is tens of megabytes,
fetched once and timed apart). Two runs: **browsing**, where each user reads a page for 1 to 3
seconds (``--pause``, uniformly at random, as load tools model people) before the next, and
**saturation**, where each asks again as soon as an answer comes (what the server can take at
most). A third of the way into each, another process opens the warehouse for writing, appends
rows and holds it for a third of the run, as an ingest would: the server must keep answering.
Prints requests per second, latency percentiles and errors, overall and by page, for each run.

    python benchmarks/serve.py --reps 20000 [--users 50] [--seconds 60] [--pause 1 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx2 as httpx

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "training_roi.cli", *args], input=stdin, capture_output=True,
                          text=True, check=True)
    return done.stdout


def _token(output: str) -> str:
    lines = output.splitlines()
    return lines[next(i for i, line in enumerate(lines) if "will not be shown again" in line) + 1].strip()


async def _pages(client: httpx.AsyncClient, name: str, password: str) -> None:
    page = await client.get("/login")
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    signed = await client.post("/login", data={"name": name, "password": password, "csrf": csrf, "next": "/"})
    if signed.status_code != 303:
        raise RuntimeError(f"sign-in failed: {signed.status_code}")


def _routes(study: str, team: str, api: bool) -> list[tuple[str, str]]:
    if api:
        return [("api programs", "/api/v1/programs"), ("api study versions", f"/api/v1/studies/{study}/versions"),
                ("api kpis org", "/api/v1/kpis?kpi=win_rate&grain=org"),
                ("api kpis team", "/api/v1/kpis?kpi=win_rate&grain=team"),
                ("api drill", f"/api/v1/studies/{study}/drill"),
                ("api drill team", f"/api/v1/studies/{study}/drill/teams/{team}"),
                ("api quality", "/api/v1/quality")]
    return [("page programs", "/"), ("page study", f"/studies/{study}"), ("page kpis org", "/kpis?kpi=win_rate"),
            ("page kpis team", "/kpis?kpi=win_rate&grain=team"), ("page drill", f"/drill/{study}"),
            ("page drill team", f"/drill/{study}/teams/{team}"), ("page quality", "/quality")]


async def _user(base: str, routes: list[tuple[str, str]], headers: dict[str, str], login: tuple[str, str] | None,
                until: float, times: dict[str, list[float]], errors: dict[str, int],
                pause: tuple[float, float], draw: random.Random) -> None:
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60, follow_redirects=False) as client:
        if login:
            await _pages(client, *login)
        await asyncio.sleep(draw.uniform(0, pause[1]))  # people do not all start at the same instant
        while time.monotonic() < until:
            for what, url in routes:
                start = time.perf_counter()
                try:
                    r = await client.get(url)
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                times[what].append(time.perf_counter() - start)
                if not ok:
                    errors[what] += 1
                if pause[1]:
                    await asyncio.sleep(draw.uniform(*pause))
                if time.monotonic() >= until:
                    return


def _writer(db: Path, hold: float) -> subprocess.Popen[str]:
    """Another process writing the warehouse for ``hold`` seconds, as an ingest does."""
    code = ("import duckdb, time\n"
            f"con = duckdb.connect({str(db)!r})\n"
            "con.execute('INSERT INTO cost_line SELECT * FROM cost_line LIMIT 100')\n"
            f"time.sleep({hold})\n"
            "con.close()\n")
    return subprocess.Popen([sys.executable, "-c", code], text=True)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def _run(base: str, study: str, team: str, tokens: dict[str, str], users: int, seconds: float,
               db: Path, pause: tuple[float, float]) -> tuple[dict[str, list[float]], dict[str, int], float, bool]:
    times: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    start = time.monotonic()
    until = start + seconds
    tasks = []
    for i in range(users):
        api = i % 2 == 0
        headers = {"Authorization": f"Bearer {tokens['analyst']}"} if api else {}
        login = None if api else ("analyst", "analyst-password-1")
        tasks.append(asyncio.create_task(_user(base, _routes(study, team, api), headers, login, until, times,
                                               errors, pause, random.Random(i))))
    await asyncio.sleep(seconds / 3)
    writer = _writer(db, seconds / 3)
    busy = False
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        for _ in range(20):  # the server looks at the warehouse every 5 s: asked until it has seen the load
            await asyncio.sleep(0.5)
            busy = (await client.get("/api/v1/health")).json()["warehouse_busy_since"] is not None
            if busy:
                break
    await asyncio.gather(*tasks)
    writer.wait(timeout=seconds)
    return times, errors, time.monotonic() - start, busy


def main() -> None:
    """Answer the study, serve it, warm each page, then load it and print the figures as Markdown."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=20000)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--pause", type=float, nargs=2, default=(1.0, 3.0), metavar=("MIN", "MAX"),
                        help="seconds a browsing user reads a page before the next (default 1 3)")
    args = parser.parse_args()
    source, truth = DATA / f"bench_{args.reps}.duckdb", DATA / f"org_{args.reps}x24_s7" / "truth.json"
    if not source.exists() or not truth.exists():
        sys.exit(f"{source} is missing: run benchmarks/ingest.py --reps {args.reps} first")
    course = json.loads(truth.read_text())["program"]["course_activity_id"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        db = work / "roi.duckdb"
        shutil.copyfile(source, db)
        study = work / "study.yaml"
        study.write_text(json.dumps({"name": "benchmark", "program": {"name": "Sales Excellence",
                                                                     "activities": [course]},
                                     "costs": {"participant_time": {"hourly_rate": 60}}}), encoding="utf-8")
        print("answering the study …", file=sys.stderr, flush=True)
        _cli("report", str(study), "--db", str(db), "--out", str(work / "out"))
        state = work / "state.sqlite"
        tokens = {"analyst": _token(_cli("users", "add", "analyst", "--role", "analyst", "--db", str(db), "--state",
                                         str(state), "--password-stdin", stdin="analyst-password-1\n"))}
        port = _port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([sys.executable, "-m", "training_roi.cli", "serve", "--db", str(db), "--state",
                                   str(state), "--port", str(port), "--results", str(work / "out")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                  env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        sys.exit(f"the server did not start: {server.communicate()[1]}")
                    time.sleep(0.5)
            auth = {"Authorization": f"Bearer {tokens['analyst']}"}
            result = json.loads((work / "out" / "result.json").read_text())
            study_hash = result["study"]["hash"]
            drill = httpx.get(f"{base}/api/v1/studies/{study_hash}/drill", headers=auth, timeout=600).json()
            team = drill["teams"][0]["team"]
            warm = {}
            for what, url in _routes(study_hash, team, True):
                start = time.perf_counter()
                httpx.get(f"{base}{url}", headers=auth, timeout=600).raise_for_status()
                warm[what] = time.perf_counter() - start
            start = time.perf_counter()
            whole = httpx.get(f"{base}/api/v1/studies/{study_hash}", headers=auth, timeout=600)
            warm["api study (whole result.json)"] = time.perf_counter() - start
            print("warm-up (first request of each figure, seconds): "
                  + ", ".join(f"{k} {v:.2f}" for k, v in warm.items())
                  + f"; the whole result is {len(whole.content) / 1e6:,.1f} MB", flush=True)
            runs = {}
            for name, pause in (("browsing", tuple(args.pause)), ("saturation", (0.0, 0.0))):
                print(f"{name} …", file=sys.stderr, flush=True)
                runs[name] = asyncio.run(_run(base, study_hash, team, tokens, args.users, args.seconds, db, pause))
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    for name, (times, errors, elapsed, busy) in runs.items():
        how = (f"each reading a page {args.pause[0]:g} to {args.pause[1]:g} s before the next" if name == "browsing"
               else "each asking again as soon as an answer comes")
        _table(name, how, times, errors, elapsed, busy, args)


def _table(name: str, how: str, times: dict[str, list[float]], errors: dict[str, int], elapsed: float, busy: bool,
           args: argparse.Namespace) -> None:
    every = [t for values in times.values() for t in values]
    print(f"\n**{name}**: {args.users} users for {args.seconds:.0f} s on the {args.reps:,}-rep org, {how}; a load "
          f"wrote the warehouse from {args.seconds / 3:.0f} s to {2 * args.seconds / 3:.0f} s (the server saw it: "
          f"{busy})\n")
    print("| requests | requests/s | p50 (ms) | p95 (ms) | p99 (ms) | errors |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    print(f"| {len(every):,} | {len(every) / elapsed:,.1f} | {_percentile(every, 0.5) * 1000:,.0f} | "
          f"{_percentile(every, 0.95) * 1000:,.0f} | {_percentile(every, 0.99) * 1000:,.0f} | "
          f"{sum(errors.values())} |\n")
    print("| page | requests | p50 (ms) | p95 (ms) | errors |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for what in sorted(times):
        values = times[what]
        print(f"| {what} | {len(values):,} | {_percentile(values, 0.5) * 1000:,.0f} | "
              f"{_percentile(values, 0.95) * 1000:,.0f} | {errors.get(what, 0)} |")


if __name__ == "__main__":
    main()
