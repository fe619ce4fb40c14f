"""The dashboard's pages, rendered on the server: sign in, programs, a study, KPIs by month, data quality.

Pages carry no script: tables and charts (SVG drawn on the server by Vega's own renderer) work
offline and print. Forms post with the session's CSRF token; the login form, before any session,
with a token in a cookie of its own (double submit). A viewer sees aggregates only — the same
rules as the API (:mod:`training_roi.web.api`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import quote

import polars as pl
from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from training_roi._format import duration, money, percent, probability
from training_roi.measure import CATALOGUE, KpiDef
from training_roi.present.charts import monthly_chart
from training_roi.web.access import COOKIE, Version, Viewer, client_of, require, snapshots_of, store_of, unprocessable
from training_roi.web.api import (
    PEOPLE_GRAINS,
    kpi_frame,
    only_team,
    parsed,
    programs_of,
    quality_of,
    quarantine_page,
)
from training_roi.web.auth import csrf_ok, login, logout, session_for
from training_roi.web.insight import KINDS, Insight, Kind, insight_kinds, insights_of
from training_roi.web.memo import Memo
from training_roi.web.methods import methods_of
from training_roi.web.programs import kpi_rows, program_row, study_sections
from training_roi.web.results import FILES, PUBLIC_FILES, without_people

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

_LOGIN_CSRF = "training_roi_login"
_FILE_POLICY = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
                "font-src data:; frame-ancestors 'none'")
Page = Annotated[Viewer, require("read_aggregates", api=False)]

_env = Environment(loader=PackageLoader("training_roi.web", "templates"), autoescape=select_autoescape(["html"]))


_env.filters.update(
    money=lambda v: "—" if v is None else money(Decimal(str(v))),
    pct=lambda v: "—" if v is None else percent(Decimal(str(v))),
    probability=lambda v: "—" if v is None else probability(v),
    utc=lambda v: None if not v else datetime.fromisoformat(v).astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
    lag=lambda v: "—" if v is None else duration(float(v)),
)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or bool(request.app.state.secure_cookies)


def render(request: Request, template: str, viewer: Viewer | None, status: int = 200, **context: Any) -> HTMLResponse:
    """A page: the template with the signed-in user, their session's CSRF token and the server's freshness."""
    snapshots = snapshots_of(request)
    html = _env.get_template(template).render(
        user=viewer.user if viewer else None, may=viewer.may if viewer else (lambda _: False),
        csrf=viewer.session.csrf_token if viewer and viewer.session else "", snapshot=snapshots.current(),
        busy=snapshots.busy_since, **context)
    return HTMLResponse(html, status_code=status)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/", message: str = "") -> HTMLResponse:
    """The sign-in form (its CSRF token in a cookie of its own and in the form)."""
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", None, next=next if next.startswith("/") else "/", message=message,
                      login_csrf=token)
    response.set_cookie(_LOGIN_CSRF, token, httponly=True, samesite="strict", secure=_secure(request), max_age=900)
    return response


@router.post("/login")
def login_submit(request: Request, name: Annotated[str, Form()], password: Annotated[str, Form()],
                 csrf: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/") -> Response:
    """Check the name and password (throttled), open a session and go where the user was going."""
    expected = request.cookies.get(_LOGIN_CSRF, "")
    if not expected or not secrets.compare_digest(expected, csrf):
        return render(request, "login.html", None, status=400, next=next, login_csrf="",
                      message="the form expired: load the sign-in page again")
    attempt = login(store_of(request), name, password, client=client_of(request))
    if not attempt.ok or attempt.session_id is None:
        return RedirectResponse(f"/login?next={quote(next)}&message={quote(attempt.message)}", status_code=303)
    response = RedirectResponse(next if next.startswith("/") and not next.startswith("//") else "/", status_code=303)
    response.set_cookie(COOKIE, attempt.session_id, httponly=True, samesite="strict", secure=_secure(request),
                        max_age=int((attempt.session.expires - attempt.session.created).total_seconds())
                        if attempt.session else None)
    response.delete_cookie(_LOGIN_CSRF)
    return response


@router.post("/logout")
def logout_submit(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    """End the session (its CSRF token required) and go to the sign-in page."""
    session_id = request.cookies.get(COOKIE)
    if not csrf_ok(session_for(store_of(request), session_id), csrf):
        raise HTTPException(status_code=403, detail="the form's CSRF token does not match the session")
    logout(store_of(request), session_id, client=client_of(request))
    response = RedirectResponse("/login?message=signed+out", status_code=303)
    response.delete_cookie(COOKIE)
    return response


@router.get("/", response_class=HTMLResponse)
def programs_page(request: Request, viewer: Page) -> HTMLResponse:
    """Every program with its latest result."""
    store_of(request).audit("view", user=viewer.user.name, target="programs", client=client_of(request))
    return render(request, "programs.html", viewer, programs=programs_of(request))


@router.get("/studies/{study_hash}", response_class=HTMLResponse)
def study_page(request: Request, viewer: Page, study_hash: str,
               version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None) -> HTMLResponse:
    """A study: the answer in words, its figures with intervals, every KPI's effect and verdict, its files.

    Below them every method side by side when the study ran them, or a line saying how to, and a
    link to the study's insight when its result carries any.
    """
    store = store_of(request)
    run = store.result(study_hash, version, document=False)
    if run is None:
        raise HTTPException(status_code=404, detail=f"no study {study_hash}")
    store.audit("view", user=viewer.user.name, target=f"study {study_hash} v{run.version}", client=client_of(request))
    row = kpis = sections = methods = None
    kept = set(store.file_names(study_hash, run.version))
    insights: list[Kind] = []
    if run.status == "done":
        full = parsed(store, run)
        row = program_row(full, version=run.version, computed=run.updated.isoformat())
        kpis = kpi_rows(full)
        sections = study_sections(full)
        methods = methods_of(full, study_hash=run.study_hash, version=run.version)
        insights = insight_kinds(full)
    files = [name for name in FILES if name in kept and _may_open(viewer, name)]
    return render(request, "study.html", viewer, run=run, row=row, kpis=kpis, sections=sections, methods=methods,
                  files=files, versions=store.versions(study_hash, document=False), insights=insights)


def _may_open(viewer: Viewer, name: str) -> bool:
    """Whether ``viewer`` may open the file ``name`` of an answer: those naming people need ``read_people``."""
    return viewer.may("read_people") or name in PUBLIC_FILES


def _insights(document: dict[str, Any], viewer: Viewer, kept: set[str]) -> list[Insight]:
    """The insight sections of a result as ``viewer`` may read them (a viewer's without people).

    A viewer's copy is made of the insight sections alone: the rest of the result is not shown here.
    """
    readable = document if viewer.may("read_people") else without_people(
        {kind.key: document[kind.key] for kind in KINDS if kind.key in document})
    return insights_of(readable, kept=kept, may_open=lambda name: _may_open(viewer, name))


@router.get("/studies/{study_hash}/v{version}/insight", response_class=HTMLResponse)
def insight_page(request: Request, viewer: Page, study_hash: str, version: Version) -> HTMLResponse:
    """A study version's insight: who benefits by subgroup, where to train next, which lessons matter.

    Each section labelled by the strength of its evidence, with its caveat and its CSV file; 404
    when the run is not done or its study asked for none (its study page then links no insight).
    """
    store = store_of(request)
    run = store.result(study_hash, version, document=False)
    if run is None or run.status != "done":
        raise HTTPException(status_code=404, detail=f"no finished run of study {study_hash} version {version}")
    insights = _insights(parsed(store, run), viewer, set(store.file_names(study_hash, version)))
    if not insights:
        raise HTTPException(status_code=404, detail=f"study {study_hash} version {version} asked for no insight "
                                                    "(insight.subgroups, insight.lesson_map)")
    store.audit("view", user=viewer.user.name, target=f"study {study_hash} v{version} insight",
                client=client_of(request))
    return render(request, "insight.html", viewer, run=run, insights=insights)


@router.get("/studies/{study_hash}/v{version}/{name}")
def study_file(request: Request, viewer: Page, study_hash: str, version: Version, name: str) -> Response:
    """One file of a study's answer (the one-pager for everyone; the report and workbook name people)."""
    if name not in FILES:
        raise HTTPException(status_code=404, detail=f"no file {name}")
    if not _may_open(viewer, name):
        raise HTTPException(status_code=403, detail=f"your role ({viewer.user.role}) may open only the files that "
                                                    f"name no one: {', '.join(sorted(PUBLIC_FILES))}")
    content = store_of(request).file(study_hash, version, name)
    if content is None:
        raise HTTPException(status_code=404, detail=f"study {study_hash} version {version} has no {name}")
    store_of(request).audit("view", user=viewer.user.name, target=f"study {study_hash} v{version} {name}",
                            client=client_of(request))
    # The report and the one-pager are self-contained pages: their inline scripts, styles and images only.
    headers = {"Content-Security-Policy": _FILE_POLICY} if name.endswith(".html") else {}
    if name.endswith(".xlsx"):
        headers["Content-Disposition"] = f'attachment; filename="{study_hash}-v{version}-{name}"'
    return Response(content, media_type=FILES[name], headers=headers)


def _day(value: str | None, field: str) -> date | None:
    """A date from the KPI form: empty when no date was chosen; a clear 422 for one that is not a date."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise unprocessable(field, f"{field} {value!r} is not a date (YYYY-MM-DD)", value) from None


def _team_order(label: str) -> tuple[bool, int, str]:
    """Teams in the select: by name, a viewer's numbered ones by number (team 2 before team 10), placeholders last."""
    number = label.removeprefix("team ")
    return label.startswith("("), int(number) if number.isdigit() else 0, label


@router.get("/kpis", response_class=HTMLResponse)
def kpis_page(request: Request, viewer: Page,
              kpi: Annotated[str, Query()] = "win_rate", grain: str = "org", since: str | None = None,
              until: str | None = None, basis: str | None = None,
              team: Annotated[str, Query(max_length=200)] = "",
              limit: Annotated[int, Query(ge=1, le=500)] = 20) -> HTMLResponse:
    """One KPI by month at a grain, with a chart at the org grain or of one team, provisional months marked.

    The form sends empty dates when no period is chosen: they mean the whole period. At the team
    grain a select offers the teams with rows; ``team`` keeps one (at another grain the form still
    carries it, and it is let go: the grain chosen last wins).
    """
    first, end = _day(since, "since"), _day(until, "until")
    grains = [g for g in ("org", "team", "rep", "account", "activity")
              if g not in PEOPLE_GRAINS or viewer.may("read_people")]
    if grain not in ("org", "team", "rep", "account", "activity"):
        raise unprocessable("grain", f"grain {grain}: expected one of {', '.join(grains)}", grain)
    snapshot = snapshots_of(request).current()
    frame = kpi_frame(request, viewer, [kpi], grain, first, end, basis or None)
    if grain != "team":
        team = ""
    elif team:
        frame = only_team(request, viewer, frame, team)  # a 422 for a team the warehouse does not know

    def make() -> _KpiView:
        return _kpi_view(frame, CATALOGUE[kpi], grain, team, limit)

    if snapshots_of(request).current() is snapshot:  # the rows are this snapshot's: kept for the next reader
        view = _KPI_VIEWS.get((str(snapshot.path), kpi, grain, first, end, basis, team, limit,
                               viewer.may("read_people")), make)
    else:
        view = make()
    return render(request, "kpis.html", viewer, kpi=kpi, grain=grain, grains=grains, since=first, until=end,
                  basis=basis or "", team=team, catalogue=CATALOGUE, spec=CATALOGUE[kpi], v=view)


@dataclass(frozen=True)
class _KpiView:
    """What the KPI page shows of one snapshot, set of filters and role: the same for every such reader."""

    options: str
    """The team select's options (HTML): thousands of teams in a large org."""
    chart: str
    table: str
    shown: int
    total: int
    reason: str | None


_KPI_VIEWS: Memo[_KpiView] = Memo(64)
"""The KPI page's parts by snapshot, filters and whether names are shown: its table of hundreds of rows,
its chart and its select of thousands of teams take tens of milliseconds to make, and a request a few."""


def _kpi_view(frame: pl.DataFrame, spec: KpiDef, grain: str, team: str, limit: int) -> _KpiView:
    """The KPI page's parts from the KPI's ``frame`` (of one ``team`` when given)."""
    teams: list[tuple[str, str]] = []
    if grain == "team":
        listed = frame.filter(pl.col("grain_id").is_not_null()).select("grain_id", "name").unique("grain_id")
        teams = sorted(((r["grain_id"], r["name"] or r["grain_id"]) for r in listed.iter_rows(named=True)),
                       key=lambda t: _team_order(t[1]))
        if team and team not in dict(teams):  # a team without rows in this period: still the one chosen
            teams.append((team, team))
    chart = ""
    rows = frame.filter(pl.col("period").is_not_null()).sort("grain_id", "period")
    if (grain == "org" or team) and rows.height:  # one series: the org's, or the team's
        points = [{"month": str(r["period"]), "value": r["value"]} for r in rows.iter_rows(named=True)
                  if r["value"] is not None]
        title = spec.label + (f", {dict(teams).get(team, team)}" if team else "")
        chart = monthly_chart(points, [], title=title, label=spec.label, unit=spec.unit)
    shown = rows.head(limit * 36)
    reason = frame["reason"].drop_nulls().head(1).to_list()
    return _KpiView(options=_env.get_template("kpis_teams.html").render(teams=teams, team=team), chart=chart,
                    table=_env.get_template("kpis_table.html").render(grain=grain, spec=spec, rows=shown.to_dicts()),
                    shown=shown.height, total=rows.height, reason=reason[0] if reason else None)


@router.get("/quality", response_class=HTMLResponse)
def quality_page(request: Request, viewer: Page) -> HTMLResponse:
    """Counts, link coverage, quarantine by source and reason, ingest runs."""
    store_of(request).audit("view", user=viewer.user.name, target="quality", client=client_of(request))
    return render(request, "quality.html", viewer, q=quality_of(request))


@router.get("/quarantine", response_class=HTMLResponse)
def quarantine_page_view(request: Request, viewer: Annotated[Viewer, require("read_people", api=False)],
                         source: str = "", reason: Annotated[str, Query(max_length=200)] = "",
                         offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0) -> HTMLResponse:
    """The quarantine, browsable by source and reason, fifty rows at a time."""
    page = quarantine_page(request, viewer, source or None, reason or None, offset, 50)
    return render(request, "quarantine.html", viewer, page=page, source=source, reason=reason,
                  sources=[q["source"] for q in quality_of(request)["quarantine"]])
