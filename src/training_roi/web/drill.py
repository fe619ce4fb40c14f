"""The drill-down, org → group → rep → deal, as pages and under ``/api/v1/studies/{hash}/drill``.

The figures come from :mod:`training_roi.evaluation.drill`, measured once per study version and
snapshot of the warehouse and kept in memory (a few of them), so that clicking down is quick. The
level between the org and the rep is chosen with ``by``: the team (the default), the department
or the second line (the manager's manager); each grouping's rows are computed once per snapshot
from the same panel, the first time someone asks for them. When no group of the chosen level has
an interval of its own, the org page says so and names the groupings whose groups are large
enough, with how many of them are.

The org and group levels are aggregates: a viewer reads them, with each team and second-line group
named by its number rather than by a manager's name; departments are the organisation's own units,
not people, so a viewer sees them by name. A group's reps, a rep's training events and deals, and
a deal's touches and credit name people: from analyst up. A deal's credit is read from the run's
``attribution.csv``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from functools import partial
from typing import Annotated, Any, Literal

import polars as pl
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from training_roi.evaluation.drill import (
    GROUPINGS,
    MIN_UNITS,
    Drill,
    LevelRow,
    drill,
    enough,
    group_rows,
    org_row,
    rep_rows,
)
from training_roi.present.charts import timeline_chart
from training_roi.study import Study
from training_roi.web.access import Viewer, client_of, require, snapshots_of, store_of, unprocessable
from training_roi.web.api import parsed
from training_roi.web.memo import Memo
from training_roi.web.pages import render
from training_roi.web.snapshot import Snapshot

__all__ = ["api", "pages"]

api = APIRouter(prefix="/api/v1/studies/{study_hash}/drill", tags=["drill-down"])
pages = APIRouter(prefix="/drill/{study_hash}", include_in_schema=False)

ApiReader = Annotated[Viewer, require("read_aggregates", api=True)]
ApiPeople = Annotated[Viewer, require("read_people", api=True)]
PageReader = Annotated[Viewer, require("read_aggregates", api=False)]
PagePeople = Annotated[Viewer, require("read_people", api=False)]

By = Literal["team", "department", "second_line"]
ByQuery = Annotated[By, Query(description="the level between the org and the rep: team (the reps sharing a "
                                          "manager), department, or second_line (the reps under their "
                                          "manager's manager)")]

NOUNS = {"team": ("team", "teams"), "department": ("department", "departments"),
         "second_line": ("second-line group", "second-line groups")}
"""Each grouping's word for one group and for several, as the pages and the API's texts say them."""

_GROUPING = {"team": "by team", "department": "by department", "second_line": "by second line (the manager's manager)"}


def _by(value: str) -> str:
    """A page's ``by``, checked: a 422 that lists the choices for any other."""
    if value not in GROUPINGS:
        raise unprocessable("by", f"by {value!r}: no such grouping; expected one of {', '.join(GROUPINGS)}", value)
    return value


@dataclass(frozen=True)
class _View:
    """A study's drill-down on one snapshot, with its org row made once (it is the same for everyone)."""

    drill: Drill
    org: LevelRow
    answers: dict[tuple[Any, ...], Any] = field(default_factory=dict, compare=False)
    """Answers made from these figures (a page of groups for a role, a group's reps), kept beside them: the
    same request asks the same of the same snapshot, and they go when the snapshot does."""

    def answer(self, key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
        """The answer ``make`` gives, made once per ``key`` (two threads may both make it: the same answer)."""
        found = self.answers.get(key)
        if found is None:
            found = self.answers[key] = make()
        return found


def _remake(rest: tuple[Any, ...], snapshot: Snapshot) -> _View:
    """A drill-down on a snapshot: ``rest`` is (study hash, version, the study's settings as JSON)."""
    d = drill(snapshot.backend(), Study.model_validate_json(rest[2]))
    return _View(d, org_row(d))


_DRILLS: Memo[_View] = Memo(4, remake=_remake)


def _remake_rows(rest: tuple[Any, ...], snapshot: Snapshot) -> tuple[LevelRow, ...]:
    """A grouping's rows on a snapshot, from its drill-down's panel: ``rest`` is the drill-down's, then ``by``."""
    view = _DRILLS.get((str(snapshot.path), *rest[:-1]), partial(_remake, rest[:-1], snapshot))
    return tuple(group_rows(view.drill, rest[-1]))


_ROWS: Memo[tuple[LevelRow, ...]] = Memo(4 * len(GROUPINGS), remake=_remake_rows)
"""Each grouping's rows, by snapshot and study: its groups' bootstraps are run once, whoever asks first (a
snapshot taken after a load remakes the groupings that were asked of the one before)."""


@dataclass(frozen=True)
class _Asked:
    """The drill-down a request reads: the study's figures on the snapshot current when it came."""

    view: _View
    version: int
    key: tuple[Any, ...]
    """The snapshot's path, the study's hash, version and settings: what the figures were made from."""
    snapshot: Snapshot

    def rows(self, by: str) -> tuple[LevelRow, ...]:
        """The rows of the grouping ``by``, largest group first (made once per snapshot)."""
        return _ROWS.get((*self.key, by), partial(_remake_rows, (*self.key[1:], by), self.snapshot))


def _asked(request: Request, study_hash: str) -> _Asked:
    """The drill-down figures of a study's latest finished run, on the current snapshot (cached)."""
    store = store_of(request)
    run = next((r for r in reversed(store.versions(study_hash, document=False)) if r.status == "done"), None)
    if run is None:
        raise HTTPException(status_code=404, detail=f"no finished run of study {study_hash}")
    snapshot = snapshots_of(request).current()
    settings = json.dumps(parsed(store, run)["study"]["settings"])
    rest = (study_hash, run.version, settings)
    made = _DRILLS.get((str(snapshot.path), *rest), partial(_remake, rest, snapshot))
    return _Asked(made, run.version, (str(snapshot.path), *rest), snapshot)


def _labels(rows: tuple[LevelRow, ...], by: str, viewer: Viewer) -> dict[str, str]:
    """Each group's label: its name for those who read people, and for everyone a department's; else its number.

    A team's or a second-line group's name is a manager's; a viewer reads it as ``team 3`` or
    ``second-line group 3``, numbered in the order of the groups' keys (stable across pages).
    """
    if viewer.may("read_people") or by == "department":
        return {r.key: r.name for r in rows}
    return {key: f"{NOUNS[by][0]} {i}" for i, key in enumerate(sorted(r.key for r in rows), 1)}


def _row(r: LevelRow, label: str | None = None) -> dict[str, Any]:
    out = asdict(r)
    out["interval"] = list(r.interval) if r.interval else None
    if label is not None:
        out["name"] = label
    return out


def _groups_told(rows: tuple[LevelRow, ...], by: str) -> tuple[int, str]:
    """How many groups have an interval of their own, and the sentence that says it of all of them."""
    one, many = NOUNS[by]
    given = sum(r.interval is not None for r in rows)
    verb, own = ("has", "its") if given == 1 else ("have", "their")
    return given, (f"{given:,} of {len(rows):,} {one if len(rows) == 1 else many} {verb} at least {MIN_UNITS} "
                   f"trained reps and an interval of {own} own")


def _wider(d: Drill, rows: tuple[LevelRow, ...], by: str) -> tuple[str, list[dict[str, Any]]]:
    """Why no group of ``by`` has an interval, and the other groupings with groups large enough for one.

    When there is none, the sentence says so: the org is then the only level with an interval. Each
    suggestion counts the groups of a grouping with at least ``MIN_UNITS`` trained reps (the
    rule an interval needs), of those with any: a count, no estimate.
    """
    one, _ = NOUNS[by]
    largest = max((r.trained_units for r in rows), default=0)
    if largest < MIN_UNITS:
        why = f"none has at least {MIN_UNITS} trained reps (the largest has {largest:,})"
    else:
        why = f"those with at least {MIN_UNITS} trained reps got no estimate (their notes say why)"
    text = f"No {one} has an interval of its own, so every {one}'s effect is not established: {why}."
    wider: list[dict[str, Any]] = []
    for other in GROUPINGS:
        if other == by:
            continue
        k, n = enough(d, other)
        if k:
            noun = NOUNS[other][0 if n == 1 else 1]
            wider.append({"by": other, "groups": n, "enough": k,
                          "text": f"{_GROUPING[other]}, {k:,} of {n:,} {noun} {'has' if k == 1 else 'have'} at "
                                  f"least {MIN_UNITS} trained reps, enough for an interval"})
    if not wider:
        others = " or ".join(NOUNS[o][0] for o in GROUPINGS if o != by)
        text += (f" Nor has any {others} at least {MIN_UNITS} trained reps: the org is the only level with an "
                 "interval.")
    return text, wider


def org_and_teams(request: Request, viewer: Viewer, study_hash: str, offset: int = 0,
                  limit: int = 100, by: str = "team") -> dict[str, Any]:
    """The org row and a page of the groups of ``by`` (largest first), labelled for the viewer."""
    asked = _asked(request, study_hash)
    view, version = asked.view, asked.version
    people = viewer.may("read_people")

    def make() -> dict[str, Any]:
        d = view.drill
        rows = asked.rows(by)
        labels = _labels(rows, by, viewer)
        teams = [_row(r, labels.get(r.key, r.name)) | {"team": r.key if people else None}
                 for r in rows[offset:offset + limit]]
        given, told = _groups_told(rows, by)
        empty, wider = _wider(d, rows, by) if not given else ("", [])
        return {"study_hash": study_hash, "version": version, "window_days": d.window_days, "kpi": "win_rate",
                "by": by, "groups": NOUNS[by][1], "org": _row(view.org), "teams": teams, "total_teams": len(rows),
                "with_interval": given, "told": told, "none_established": empty or None, "wider": wider,
                "offset": offset, "limit": limit,
                "note": f"{NOUNS[by][0]} intervals are not adjusted for looking at many {NOUNS[by][1]} at once"}

    answer: dict[str, Any] = view.answer(("org", version, people, offset, limit, by), make)
    store_of(request).audit("view", user=viewer.user.name, target=f"drill {study_hash} org", detail=f"by {by}",
                            client=client_of(request))
    return answer


@api.get("")
def api_org(request: Request, viewer: ApiReader, study_hash: str,
            offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
            limit: Annotated[int, Query(ge=1, le=10_000)] = 100, by: ByQuery = "team") -> dict[str, Any]:
    """The org and a page of its groups (``by``: teams by default), largest first, each with its effect and interval.

    ``teams`` holds the groups of the chosen grouping and ``total_teams`` says how many there are in
    all; ``with_interval`` how many have an interval of their own (``told`` says it in words). When
    none has, ``none_established`` says why and ``wider`` lists the other groupings whose groups
    are large enough for one, with how many are.
    """
    return org_and_teams(request, viewer, study_hash, offset, limit, by)


def team_reps(request: Request, viewer: Viewer, study_hash: str, team: str, by: str = "team") -> dict[str, Any]:
    """One group's trained reps, each with their own change and its interval, beside the group's comparison."""
    asked = _asked(request, study_hash)
    view, version = asked.view, asked.version
    d = view.drill
    grouping = d.groupings[by]
    if team not in grouping.members:
        raise HTTPException(status_code=404, detail=f"no {NOUNS[by][0]} {team} in study {study_hash}")

    def make() -> dict[str, Any]:
        row = next((r for r in asked.rows(by) if r.key == team), None)
        return {"study_hash": study_hash, "version": version, "by": by, "groups": NOUNS[by][1], "team": team,
                "name": grouping.names.get(team, team), "reps": [_row(r) for r in rep_rows(d, team, by)],
                "comparison": next((part for part in (row.note if row else "").split("; ")
                                    if "whole comparison group" in part), ""),
                "note": "a rep's change since training, with its interval; one rep's change is not the program's "
                        "effect"}

    answer: dict[str, Any] = view.answer(("team", version, team, by), make)
    store_of(request).audit("view", user=viewer.user.name, target=f"drill {study_hash} team {team}",
                            detail=f"by {by}", client=client_of(request))
    return answer


@api.get("/teams/{team:path}")
def api_team(request: Request, viewer: ApiPeople, study_hash: str, team: str, by: ByQuery = "team") -> dict[str, Any]:
    """A group's trained reps (names: analyst and up); ``team`` is the group's key in the grouping ``by``."""
    return team_reps(request, viewer, study_hash, team, by)


def rep_detail(request: Request, viewer: Viewer, study_hash: str, unit: str, by: str = "team") -> dict[str, Any]:
    """A trained rep's training events and their deals from the baseline's start to the window's end.

    ``group`` and ``group_name`` are the rep's group in the grouping ``by`` (the page links back to
    it); ``team`` and ``team_name`` their team, whatever ``by``.
    """
    asked = _asked(request, study_hash)
    d, version = asked.view.drill, asked.version
    anchor = d.anchors.get(unit)
    if anchor is None:
        raise HTTPException(status_code=404, detail=f"{unit} is not a trained rep of study {study_hash}")
    start, end = anchor - timedelta(days=d.baseline_days), anchor + timedelta(days=d.window_days)
    con = snapshots_of(request).current().backend()
    ids = con.table("learner_identity")
    keys = ids.filter(ids.crm_user_id == unit).select("learner_key").to_pyarrow()["learner_key"].to_pylist()
    lr = con.table("learning_record")
    events = lr.filter(lr.learner_key.isin(keys)).select("occurred_at", "verb", "activity_name", "activity_id",
                                                          "score_pct", "success", "minutes").order_by("occurred_at")
    o = con.table("crm_opportunity")
    deals = o.filter((o.owner_id == unit) & ~o.is_deleted.fill_null(False) & (o.created_at.date() >= start)
                     & (o.created_at.date() < end)).select(
        "opportunity_id", "name", "stage_name", "amount", "created_at", "close_date", "is_closed", "is_won"
    ).order_by("created_at")
    store_of(request).audit("view", user=viewer.user.name, target=f"drill {study_hash} rep {unit}",
                            client=client_of(request))
    team, group = d.team_of.get(unit, ""), d.groupings[by].group_of.get(unit, "")
    return {"study_hash": study_hash, "version": version, "unit": unit, "name": d.unit_names.get(unit, unit),
            "team": team, "team_name": d.groupings["team"].names.get(team, team), "by": by, "group": group,
            "group_name": d.groupings[by].names.get(group, group), "trained_on": anchor.isoformat(),
            "baseline_from": start.isoformat(), "window_until": end.isoformat(),
            "events": events.to_pyarrow().to_pylist(), "deals": deals.to_pyarrow().to_pylist()}


@api.get("/reps/{unit}")
def api_rep(request: Request, viewer: ApiPeople, study_hash: str, unit: str, by: ByQuery = "team") -> dict[str, Any]:
    """A rep's training events and deals around their training (analyst and up), with their group in ``by``."""
    return rep_detail(request, viewer, study_hash, unit, by)


def deal_detail(request: Request, viewer: Viewer, study_hash: str, opportunity: str) -> dict[str, Any]:
    """A deal's touches and the credit each got, from the run's attribution.csv."""
    version = _asked(request, study_hash).version
    content = store_of(request).file(study_hash, version, "attribution.csv")
    if content is None:
        raise HTTPException(status_code=404, detail=f"study {study_hash} version {version} has no attribution")
    frame = pl.read_csv(io.BytesIO(content), infer_schema_length=None)
    touches = frame.filter(pl.col("opportunity_id") == opportunity)
    if touches.is_empty():
        raise HTTPException(status_code=404, detail=f"deal {opportunity} has no attributed touches in this study")
    store_of(request).audit("view", user=viewer.user.name, target=f"drill {study_hash} deal {opportunity}",
                            client=client_of(request))
    return {"study_hash": study_hash, "version": version, "opportunity_id": opportunity,
            "value": touches["value"][0], "unit_id": touches["unit_id"][0], "touches": touches.to_dicts()}


@api.get("/deals/{opportunity}")
def api_deal(request: Request, viewer: ApiPeople, study_hash: str, opportunity: str) -> dict[str, Any]:
    """A deal's touches and credit by model (analyst and up)."""
    return deal_detail(request, viewer, study_hash, opportunity)


@pages.get("", response_class=HTMLResponse)
def org_page(request: Request, viewer: PageReader, study_hash: str,
             offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0, by: str = "team") -> HTMLResponse:
    """The org and its groups (``by``: teams by default), fifty at a time, with the choice of grouping."""
    d = org_and_teams(request, viewer, study_hash, offset, 50, _by(by))
    return render(request, "drill_org.html", viewer, d=d, choices=[(g, NOUNS[g][1]) for g in GROUPINGS])


@pages.get("/teams/{team:path}", response_class=HTMLResponse)
def team_page(request: Request, viewer: PagePeople, study_hash: str, team: str, by: str = "team") -> HTMLResponse:
    """A group's trained reps (a team's by default)."""
    return render(request, "drill_team.html", viewer, d=team_reps(request, viewer, study_hash, team, _by(by)))


@pages.get("/reps/{unit}", response_class=HTMLResponse)
def rep_page(request: Request, viewer: PagePeople, study_hash: str, unit: str, by: str = "team") -> HTMLResponse:
    """A rep's training events on a timeline beside their deals, linked back to their group in ``by``."""
    detail = rep_detail(request, viewer, study_hash, unit, _by(by))
    return render(request, "drill_rep.html", viewer, d=detail, chart=timeline_chart(detail))


@pages.get("/deals/{opportunity}", response_class=HTMLResponse)
def deal_page(request: Request, viewer: PagePeople, study_hash: str, opportunity: str) -> HTMLResponse:
    """A deal's touches and credit."""
    return render(request, "drill_deal.html", viewer, d=deal_detail(request, viewer, study_hash, opportunity))
