"""The REST API under ``/api/v1``: programs, studies and their results, KPIs, data quality.

Every data endpoint needs a Bearer token (401 without one) and the role's permission (403); only
``/api/v1/health`` is public. KPIs answer in JSON or, with ``format=csv``, in CSV (text cells
made safe to open in a spreadsheet). A viewer reads aggregates only: results without their
person-level rows, KPIs at the org and team grains. The OpenAPI document is
``/api/v1/openapi.json``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import partial
from typing import Annotated, Any, Literal

import orjson
import polars as pl
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from training_roi import __version__
from training_roi._format import spreadsheet_safe
from training_roi.measure import BASES, CATALOGUE, UNASSIGNED, named_kpis, team_ids
from training_roi.warehouse.quality import quality_report
from training_roi.web.access import Version, Viewer, client_of, require, snapshots_of, store_of, unprocessable
from training_roi.web.memo import Memo
from training_roi.web.methods import Methods, methods_of
from training_roi.web.programs import program_row
from training_roi.web.results import without_people
from training_roi.web.snapshot import Snapshot
from training_roi.web.store import Store, StoredResult

__all__ = ["PEOPLE_GRAINS", "router"]

router = APIRouter(prefix="/api/v1")

PEOPLE_GRAINS = frozenset({"rep", "account", "activity"})
"""KPI grains whose rows are people (or a customer, or a lesson a person took): not a viewer's."""

Reader = Annotated[Viewer, require("read_aggregates", api=True)]

_KPIS: Memo[pl.DataFrame] = Memo(32, remake=lambda rest, snapshot: _kpis(rest, snapshot))
_PARSED: Memo[dict[str, Any]] = Memo(8)
_ROWS: Memo[dict[str, Any]] = Memo(64)
_VIEWER_COPIES: Memo[bytes] = Memo(16)
_TEAMS: Memo[dict[str, str]] = Memo(4)
_QUALITY: Memo[dict[str, Any]] = Memo(2, remake=lambda rest, snapshot: _quality(rest, snapshot))


class Health(BaseModel):
    """Whether the server answers, and how fresh its copy of the warehouse is."""

    status: Literal["ok"]
    version: str
    snapshot_taken: str
    warehouse_modified: str
    warehouse_busy_since: str | None


@router.get("/health", response_model=Health, tags=["server"])
def health(request: Request) -> Health:
    """Public: the server is up; when its copy of the warehouse was taken, and whether a load is running."""
    snapshots = snapshots_of(request)
    snap = snapshots.current()
    busy = snapshots.busy_since
    return Health(status="ok", version=__version__, snapshot_taken=snap.taken.isoformat(),
                  warehouse_modified=snap.source_modified.isoformat(),
                  warehouse_busy_since=busy.isoformat() if busy else None)


def parsed(store: Store, run: StoredResult) -> dict[str, Any]:
    """A finished run's result.json, read and parsed once (a 20,000-rep org's is tens of megabytes)."""

    def load() -> dict[str, Any]:
        document = run.document
        if document is None:
            full = store.result(run.study_hash, run.version)
            document = full.document if full is not None else None
        if document is None:
            raise HTTPException(status_code=404, detail=f"study {run.study_hash} version {run.version} has no result")
        loaded: dict[str, Any] = orjson.loads(document)
        return loaded

    return _PARSED.get((run.study_hash, run.version, run.updated), load)


def programs_of(request: Request) -> list[dict[str, Any]]:
    """Every study's latest finished result, as a program row."""
    store = store_of(request)

    def row(run: StoredResult) -> dict[str, Any]:
        return program_row(parsed(store, run), version=run.version, computed=run.updated.isoformat()).asdict()

    return [_ROWS.get((r.study_hash, r.version, r.updated), partial(row, r))
            for r in store.latest_results(status="done", document=False)]


@router.get("/programs", tags=["programs"])
def programs(request: Request, viewer: Reader) -> list[dict[str, Any]]:
    """Every program (study) with its latest result: cost, benefit, ROI with interval, P(ROI > 0), levels."""
    store_of(request).audit("view", user=viewer.user.name, target="programs", client=client_of(request))
    return programs_of(request)


def _run(request: Request, study_hash: str, version: int | None) -> Any:
    found = store_of(request).result(study_hash, version)
    if found is None:
        which = f" version {version}" if version else ""
        raise HTTPException(status_code=404, detail=f"no study {study_hash}{which}")
    return found


def _document(request: Request, viewer: Viewer, study_hash: str, version: int | None) -> Response:
    """A run as JSON: its status and times, and its result.json as stored (or a viewer's copy without people).

    The result is written into the answer as the stored text (or the viewer's copy, made once), not
    parsed and serialised again for every request.
    """
    run = _run(request, study_hash, version)
    store_of(request).audit("view", user=viewer.user.name, target=f"study {study_hash} v{run.version}",
                            client=client_of(request))
    people = viewer.may("read_people")
    envelope = orjson.dumps({"study_hash": run.study_hash, "version": run.version, "name": run.study_name,
                             "status": run.status, "progress": run.progress, "error": run.error,
                             "run_by": run.run_by if people else None, "created": run.created.isoformat(),
                             "updated": run.updated.isoformat()})
    result = b"null"
    if run.document:
        result = run.document.encode("utf-8") if people else _VIEWER_COPIES.get(
            (run.study_hash, run.version, run.updated),
            lambda: orjson.dumps(without_people(parsed(store_of(request), run))))
    return Response(envelope[:-1] + b',"result":' + result + b"}", media_type="application/json")


@router.get("/studies/{study_hash}", tags=["studies"])
def study(request: Request, viewer: Reader, study_hash: str) -> Response:
    """A study's latest run: its status and, when done, its result.json (without people for a viewer)."""
    return _document(request, viewer, study_hash, None)


@router.get("/studies/{study_hash}/versions", tags=["studies"])
def versions(request: Request, viewer: Reader, study_hash: str) -> list[dict[str, Any]]:
    """Every run of a study hash, version 1 first (status and times, no result)."""
    runs = store_of(request).versions(study_hash, document=False)
    if not runs:
        raise HTTPException(status_code=404, detail=f"no study {study_hash}")
    return [{"version": r.version, "status": r.status, "created": r.created.isoformat(),
             "updated": r.updated.isoformat(), "finished": r.finished.isoformat() if r.finished else None}
            for r in runs]


@router.get("/studies/{study_hash}/versions/{version}", tags=["studies"])
def study_version(request: Request, viewer: Reader, study_hash: str, version: Version) -> Response:
    """One run of a study by version."""
    return _document(request, viewer, study_hash, version)


@router.get("/studies/{study_hash}/methods", tags=["studies"], response_model=Methods)
def study_methods(request: Request, viewer: Reader, study_hash: str,
                  version: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="a finished run's version; "
                                                                                      "default the latest")] = None,
                  ) -> Methods:
    """Every method side by side: the recommended one and why, each method's effect, verdict and challenges.

    Effects and intervals are worded in the headline KPI's unit, beside the diagnostics the
    recommendation weighed; ``ran`` is false, with how to run them, when the study ran its own
    design alone. Aggregates: a viewer's too.
    """
    store = store_of(request)
    if version is None:
        run = next((r for r in reversed(store.versions(study_hash, document=False)) if r.status == "done"), None)
    else:
        run = store.result(study_hash, version, document=False)
    if run is None or run.status != "done":
        which = f" version {version}" if version else ""
        raise HTTPException(status_code=404, detail=f"no finished run of study {study_hash}{which}")
    store.audit("view", user=viewer.user.name, target=f"study {study_hash} v{run.version} methods",
                client=client_of(request))
    return methods_of(parsed(store, run), study_hash=study_hash, version=run.version)


def _kpis(rest: tuple[Any, ...], snapshot: Snapshot) -> pl.DataFrame:
    """KPIs by month on a snapshot: ``rest`` is (KPI names, grain, since, until, basis)."""
    chosen, grain, since, until, basis = rest
    frame, _ = named_kpis(snapshot.backend(), list(chosen), monthly=True, since=since, until=until, grain=grain,
                          basis=basis)
    return frame


_PLACEHOLDERS = frozenset({*UNASSIGNED.values(), "(no CRM user)"})
"""The team grain's ids for facts without a team: they name no one, so a viewer reads them as they are."""


def _team_numbers(snapshot: Snapshot) -> dict[str, str]:
    """Each team's number, ``team 1`` … , over every team the warehouse knows (its managers' ids, sorted).

    Numbered over the warehouse's teams rather than over one KPI's rows, a team keeps its number
    whichever KPI, period or basis a viewer looks at, so that a team filter means the same team.
    """
    return _TEAMS.get((str(snapshot.path),), lambda: {
        team: f"team {i}" for i, team in enumerate(team_ids(snapshot.backend()), 1)})


def _numbered_teams(frame: pl.DataFrame, numbers: dict[str, str]) -> pl.DataFrame:
    """Teams by number, not by their manager's id and name: what a viewer reads (a team is named for a person).

    The placeholders for facts without a team (``(no team)``, ``(no owner)``) stay as they are; an
    id the numbering does not know (none should) is numbered after the others, never shown.
    """
    others = sorted(set(frame["grain_id"].drop_nulls().to_list()) - set(numbers) - _PLACEHOLDERS)
    number = {**numbers, **{team: f"team {len(numbers) + i}" for i, team in enumerate(others, 1)},
              **{p: p for p in _PLACEHOLDERS}}
    out = frame.with_columns(pl.col("grain_id").replace_strict(number, default=None, return_dtype=pl.String))
    return out.with_columns(name=pl.col("grain_id")) if "name" in out.columns else out


def only_team(request: Request, viewer: Viewer, frame: pl.DataFrame, team: str) -> pl.DataFrame:
    """The rows of one team of a team-grain ``frame`` (and a KPI's unavailability, which is no team's).

    ``team`` is its ``grain_id`` as ``frame`` shows it to the reader: a manager's id, or for a viewer
    its number (``team 3``), or a placeholder such as ``(no owner)``. A team the warehouse does not
    know is a 422 naming some that it does; a team it knows without rows in the period has none.
    """
    numbers = _team_numbers(snapshots_of(request).current())
    known = set(numbers if viewer.may("read_people") else numbers.values())
    known |= set(frame["grain_id"].drop_nulls().to_list())
    if team not in known:
        shown = sorted(known - _PLACEHOLDERS, key=lambda t: (len(t), t))  # team 2 before team 10
        some = ", ".join(shown[:5]) + (f", … ({len(shown):,} in all)" if len(shown) > 5 else "")
        raise unprocessable("team", f"team {team!r}: no such team; the team grain's rows name each team in "
                                    f"grain_id ({some or 'this warehouse has no teams'})", team)
    return frame.filter((pl.col("grain_id") == team) | pl.col("grain_id").is_null())


def kpi_frame(request: Request, viewer: Viewer, kpi: list[str] | None, grain: str, since: date | None,
              until: date | None, basis: str | None, team: str | None = None) -> pl.DataFrame:
    """KPIs by month from the warehouse's snapshot, checked against the reader's role.

    ``team`` keeps one team's rows at the team grain: its ``grain_id`` as the team grain shows it to
    this reader (a manager's id, or ``team 3`` for a viewer); a team the warehouse does not know is a 422.
    """
    chosen = kpi or list(CATALOGUE)
    unknown = [k for k in chosen if k not in CATALOGUE]
    if unknown:
        raise unprocessable("kpi", f"kpi {', '.join(unknown)}: not in the catalogue ({', '.join(CATALOGUE)})",
                            unknown)
    if grain in PEOPLE_GRAINS and not viewer.may("read_people"):
        raise HTTPException(status_code=403, detail=f"your role ({viewer.user.role}) reads the org and team grains "
                                                    "only")
    if basis is not None and basis not in BASES:
        raise unprocessable("basis", f"basis {basis}: expected one of {', '.join(BASES)}", basis)
    if since is not None and until is not None and since >= until:
        raise unprocessable("until", f"since {since} is not before until {until}: the period is empty", str(until))
    if team is not None and grain != "team":
        raise unprocessable("team", f"team filters the team grain, not the {grain} grain: ask grain=team, or leave "
                                    "grain out", team)
    snapshot = snapshots_of(request).current()
    rest = (tuple(chosen), grain, since, until, basis)
    frame = _KPIS.get((str(snapshot.path), *rest), partial(_kpis, rest, snapshot))
    if grain == "team" and not viewer.may("read_people"):
        frame = _numbered_teams(frame, _team_numbers(snapshot))
    if team is not None:
        frame = only_team(request, viewer, frame, team)
    store_of(request).audit("view", user=viewer.user.name, target=f"kpis {grain}",
                            detail=",".join(chosen) + (f" team={team}" if team is not None else ""),
                            client=client_of(request))
    return frame


@router.get("/kpis", tags=["kpis"], responses={200: {"content": {"text/csv": {}}}})
def kpis(request: Request, viewer: Reader,
         kpi: Annotated[list[str] | None, Query(description="a KPI of the catalogue (repeat); default all")] = None,
         grain: Annotated[Literal["org", "team", "rep", "account", "activity"] | None,
                          Query(description="default org, or team when a team is asked for")] = None,
         team: Annotated[str | None, Query(max_length=200, description="one team's grain_id at the team grain "
                                                                        "(a viewer's teams are numbered: team 3)")]
         = None,
         since: date | None = None, until: date | None = None,
         basis: Literal["close", "created"] | None = None,
         format: Literal["json", "csv"] = "json",
         limit: Annotated[int, Query(ge=1, le=100_000, description="rows of a JSON page")] = 1_000,
         offset: Annotated[int, Query(ge=0, le=2**31 - 1, description="rows skipped before the JSON page")] = 0,
         ) -> Response:
    """KPIs month by month (provisional months marked, changes over a month and a year), as JSON or CSV.

    JSON comes a page at a time (``limit`` rows from ``offset``; ``X-Total-Count`` gives how many
    there are, and a ``Link`` header the next page): a team grain of a 20,000-rep org is tens of
    thousands of rows. CSV is the whole table, for a spreadsheet. ``team`` keeps one team's rows (and
    implies the team grain); a team the warehouse does not know is refused with 422.
    """
    grain = grain or ("team" if team is not None else "org")
    frame = kpi_frame(request, viewer, kpi, grain, since, until, basis, team)
    if format == "csv":
        return Response(spreadsheet_safe(frame).write_csv(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="kpis_{grain}.csv"'})
    headers = {"X-Total-Count": str(frame.height)}
    if offset + limit < frame.height:
        following = request.url.include_query_params(offset=offset + limit, limit=limit)
        headers["Link"] = f'<{following}>; rel="next"'
    return Response(frame.slice(offset, limit).write_json(), media_type="application/json", headers=headers)


@router.get("/quality", tags=["quality"])
def quality(request: Request, viewer: Reader) -> dict[str, Any]:
    """The warehouse's data-quality account: counts, ingest runs, quarantine by reason, link coverage."""
    store_of(request).audit("view", user=viewer.user.name, target="quality", client=client_of(request))
    return quality_of(request)


def quality_of(request: Request) -> dict[str, Any]:
    """The data-quality account of the current snapshot (computed once per snapshot), its syncs' lag as of now."""
    snapshot = snapshots_of(request).current()
    return with_lag(_QUALITY.get((str(snapshot.path),), partial(_quality, (), snapshot)), datetime.now(UTC))


def with_lag(report: dict[str, Any], now: datetime) -> dict[str, Any]:
    """``report`` with each synced source's lag (seconds since its last successful sync) counted to ``now``.

    The account is kept per snapshot, but a lag grows while nothing is loaded: it is counted when asked.
    """
    if not report.get("syncs"):
        return report
    syncs = [{**s, "lag_seconds": None if s.get("last_success") is None else
              round((now - datetime.fromisoformat(s["last_success"])).total_seconds(), 1)} for s in report["syncs"]]
    return {**report, "syncs": syncs}


def _quality(rest: tuple[Any, ...], snapshot: Snapshot) -> dict[str, Any]:
    report: dict[str, Any] = quality_report(snapshot.backend()).asdict()
    return report


class QuarantinePage(BaseModel):
    """A page of quarantined rows: where each came from, the field and the reason, and the raw row."""

    total: int
    offset: int
    limit: int
    rows: list[dict[str, Any]]


def quarantine_page(request: Request, viewer: Viewer, source: str | None, reason: str | None, offset: int,
                    limit: int) -> QuarantinePage:
    """Quarantined rows, filtered by source and by a reason's words, a page at a time (raw rows: analysts and up)."""
    for field, text in (("source", source), ("reason", reason)):
        if text and any(ord(c) < 32 for c in text):
            raise unprocessable(field, f"{field} holds a control character: type the words to look for", text)
    con = snapshots_of(request).current().backend()
    q = con.table("quarantine")
    if source:
        q = q.filter(q.source == source)
    if reason:
        q = q.filter(q.reason.contains(reason))
    total = int(q.count().to_pyarrow().as_py())
    rows = q.order_by(["source", "source_file", "source_line"]).limit(limit, offset=offset).to_pyarrow().to_pylist()
    store_of(request).audit("view", user=viewer.user.name, target="quarantine",
                            detail=f"source={source or ''} reason={reason or ''} offset={offset}",
                            client=client_of(request))
    return QuarantinePage(total=total, offset=offset, limit=limit, rows=rows)


@router.get("/quarantine", tags=["quality"], response_model=QuarantinePage)
def quarantine(request: Request, viewer: Annotated[Viewer, require("read_people", api=True)],
               source: str | None = None, reason: Annotated[str | None, Query(max_length=200)] = None,
               offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
               limit: Annotated[int, Query(ge=1, le=1_000)] = 100) -> QuarantinePage:
    """The rows ingest could not use — source, file, line, field, reason and the raw row — a page at a time.

    Raw rows can hold names and emails: analysts and up.
    """
    return quarantine_page(request, viewer, source, reason, offset, limit)
