"""The drill-down, org → team → rep → deal, as pages and under ``/api/v1/studies/{hash}/drill``.

The figures come from :mod:`training_roi.evaluation.drill`, measured once per study version and
snapshot of the warehouse and kept in memory (a few of them), so that clicking down is quick. The
org and team levels are aggregates: a viewer reads them, with each team named by its number
rather than by its manager. A team's reps, a rep's training events and deals, and a deal's touches
and credit name people: from analyst up. A deal's credit is read from the run's ``attribution.csv``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from functools import partial
from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from training_roi.evaluation.drill import Drill, LevelRow, drill, org_row, rep_rows, team_rows
from training_roi.present.charts import timeline_chart
from training_roi.study import Study
from training_roi.web.access import Viewer, client_of, require, snapshots_of, store_of
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

@dataclass(frozen=True)
class _View:
    """A study's drill-down on one snapshot, with its org and team rows made once (they are the same for everyone)."""

    drill: Drill
    org: LevelRow
    teams: tuple[LevelRow, ...]
    answers: dict[tuple[Any, ...], Any] = field(default_factory=dict, compare=False)
    """Answers made from these figures (a page of teams for a role, a team's reps), kept beside them: the
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
    return _View(d, org_row(d), tuple(team_rows(d)))


_DRILLS: Memo[_View] = Memo(4, remake=_remake)


def _view(request: Request, study_hash: str) -> tuple[_View, int]:
    """The drill-down figures of a study's latest finished run, on the current snapshot (cached)."""
    store = store_of(request)
    run = next((r for r in reversed(store.versions(study_hash, document=False)) if r.status == "done"), None)
    if run is None:
        raise HTTPException(status_code=404, detail=f"no finished run of study {study_hash}")
    snapshot = snapshots_of(request).current()
    settings = json.dumps(parsed(store, run)["study"]["settings"])
    rest = (study_hash, run.version, settings)
    made = _DRILLS.get((str(snapshot.path), *rest), partial(_remake, rest, snapshot))
    return made, run.version


def _drill(request: Request, study_hash: str) -> tuple[Drill, int]:
    """The drill-down figures of a study's latest finished run, on the current snapshot (cached)."""
    view, version = _view(request, study_hash)
    return view.drill, version


def _team_label(d: Drill, viewer: Viewer) -> dict[str, str]:
    """Each team's label: its manager's name for those who read people, else its number."""
    teams = sorted({d.team_of[u] for u in d.panel.treated.units})
    if viewer.may("read_people"):
        return {t: d.team_names.get(t, t) for t in teams}
    return {t: f"team {i}" for i, t in enumerate(teams, 1)}


def _row(r: LevelRow, label: str | None = None) -> dict[str, Any]:
    out = asdict(r)
    out["interval"] = list(r.interval) if r.interval else None
    if label is not None:
        out["name"] = label
    return out


def org_and_teams(request: Request, viewer: Viewer, study_hash: str, offset: int = 0,
                  limit: int = 100) -> dict[str, Any]:
    """The org row and a page of the teams' (largest first), labelled for the viewer."""
    view, version = _view(request, study_hash)
    people = viewer.may("read_people")

    def make() -> dict[str, Any]:
        d = view.drill
        labels = _team_label(d, viewer)
        teams = [_row(r, labels.get(r.key, r.name)) | {"team": r.key if people else None}
                 for r in view.teams[offset:offset + limit]]
        return {"study_hash": study_hash, "version": version, "window_days": d.window_days, "kpi": "win_rate",
                "org": _row(view.org), "teams": teams, "total_teams": len(view.teams), "offset": offset,
                "limit": limit, "note": "team intervals are not adjusted for looking at many teams at once"}

    answer: dict[str, Any] = view.answer(("org", version, people, offset, limit), make)
    store_of(request).audit("view", user=viewer.user.name, target=f"drill {study_hash} org", client=client_of(request))
    return answer


@api.get("")
def api_org(request: Request, viewer: ApiReader, study_hash: str,
            offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
            limit: Annotated[int, Query(ge=1, le=10_000)] = 100) -> dict[str, Any]:
    """The org and a page of its teams, largest first: both groups' win rates, the effect with its interval.

    ``total_teams`` says how many teams there are in all.
    """
    return org_and_teams(request, viewer, study_hash, offset, limit)


def team_reps(request: Request, viewer: Viewer, study_hash: str, team: str) -> dict[str, Any]:
    """One team's trained reps, each with their own change and its interval."""
    view, version = _view(request, study_hash)
    d = view.drill
    if team not in d.members:
        raise HTTPException(status_code=404, detail=f"no team {team} in study {study_hash}")

    def make() -> dict[str, Any]:
        return {"study_hash": study_hash, "version": version, "team": team, "name": d.team_names.get(team, team),
                "reps": [_row(r) for r in rep_rows(d, team)],
                "note": "a rep's change since training, with its interval; one rep's change is not the program's "
                        "effect"}

    answer: dict[str, Any] = view.answer(("team", version, team), make)
    store_of(request).audit("view", user=viewer.user.name, target=f"drill {study_hash} team {team}",
                            client=client_of(request))
    return answer


@api.get("/teams/{team}")
def api_team(request: Request, viewer: ApiPeople, study_hash: str, team: str) -> dict[str, Any]:
    """A team's trained reps (names: analyst and up)."""
    return team_reps(request, viewer, study_hash, team)


def rep_detail(request: Request, viewer: Viewer, study_hash: str, unit: str) -> dict[str, Any]:
    """A trained rep's training events and their deals from the baseline's start to the window's end."""
    d, version = _drill(request, study_hash)
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
    team = d.team_of.get(unit, "")
    return {"study_hash": study_hash, "version": version, "unit": unit, "name": d.unit_names.get(unit, unit),
            "team": team, "team_name": d.team_names.get(team, team), "trained_on": anchor.isoformat(),
            "baseline_from": start.isoformat(), "window_until": end.isoformat(),
            "events": events.to_pyarrow().to_pylist(), "deals": deals.to_pyarrow().to_pylist()}


@api.get("/reps/{unit}")
def api_rep(request: Request, viewer: ApiPeople, study_hash: str, unit: str) -> dict[str, Any]:
    """A rep's training events and deals around their training (analyst and up)."""
    return rep_detail(request, viewer, study_hash, unit)


def deal_detail(request: Request, viewer: Viewer, study_hash: str, opportunity: str) -> dict[str, Any]:
    """A deal's touches and the credit each got, from the run's attribution.csv."""
    _, version = _drill(request, study_hash)
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
             offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0) -> HTMLResponse:
    """The org and its teams, fifty at a time."""
    return render(request, "drill_org.html", viewer, d=org_and_teams(request, viewer, study_hash, offset, 50))


@pages.get("/teams/{team}", response_class=HTMLResponse)
def team_page(request: Request, viewer: PagePeople, study_hash: str, team: str) -> HTMLResponse:
    """A team's trained reps."""
    return render(request, "drill_team.html", viewer, d=team_reps(request, viewer, study_hash, team))


@pages.get("/reps/{unit}", response_class=HTMLResponse)
def rep_page(request: Request, viewer: PagePeople, study_hash: str, unit: str) -> HTMLResponse:
    """A rep's training events on a timeline beside their deals."""
    detail = rep_detail(request, viewer, study_hash, unit)
    return render(request, "drill_rep.html", viewer, d=detail, chart=timeline_chart(detail))


@pages.get("/deals/{opportunity}", response_class=HTMLResponse)
def deal_page(request: Request, viewer: PagePeople, study_hash: str, opportunity: str) -> HTMLResponse:
    """A deal's touches and credit."""
    return render(request, "drill_deal.html", viewer, d=deal_detail(request, viewer, study_hash, opportunity))
