"""Scenario ``crm_golive``: the program is a new CRM, and its effect is on leads.

The sales teams (a manager and the reps who report to them) move to a new CRM in waves: the teams
are spread at random and evenly over the go-live dates (the first of a month). A lead is exposed
when its owner's team is live on the UTC date it is created. Per lead, with common random numbers:

* first response: r0 = exp(τ_team + η_team,month + σ·Z) hours in the old CRM, τ_team ~ N(log
  median, team σ), η a shock the team's leads share in a calendar month (sd 0 in ``crm_golive``,
  0.5 in ``crm_golive_team_months``), and r1 = factor·r0 in the new one, both in whole seconds.
  The response is a task its owner logs on the lead (WhoId) that long after the lead's
  CreatedDate; one after the period's end is not in Task.csv (the lead looks unanswered);
* conversion: leads converted into an opportunity convert either way; of the others a share
  q = conversion_points / (1 − _LEAD_CONVERSION) converts in the new CRM only, 1–30 days after
  creation if that is within the period, into the owner's prospect account, with no opportunity.

The CRM shows r1 and converted1 for exposed leads, r0 and converted0 for the others. Deals do not
change (the pipeline of the seed with no effect at all), so the sales KPIs are a placebo. Reps
complete the CRM Basics course in the first ``training_days`` days of their team's go-live.
``truth["crm"]`` has each team's go-live date and the exact effect on the leads created after it,
per team and overall; ``truth_leads.parquet`` has both potential outcomes per lead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from training_roi.simulate.costs import _cost_frame, _CostLine, _lms_subscription
from training_roi.simulate.crm import _LEAD_CONVERSION
from training_roi.simulate.draws import _stream
from training_roi.simulate.fields import _dates
from training_roi.simulate.learners import _Learners
from training_roi.simulate.org import _Org, _region_names
from training_roi.simulate.period import _DAY, _Calendar, _iso_date
from training_roi.simulate.program import _ACT, _Course
from training_roi.simulate.scenarios import _CrmScenario
from training_roi.simulate.truth import _diff

_CRM_COURSE = _Course("CRM rollout", f"{_ACT}/program/crm-rollout", f"{_ACT}/course/crm-basics",
                      "CRM Basics: Working in the New CRM", (
                          ("01-leads", "Capturing and Assigning Leads"),
                          ("02-first-response", "Responding to a New Lead Within the Hour"),
                          ("03-activities", "Logging Calls, Emails and Tasks"),
                          ("04-conversion", "Converting a Lead: Account, Contact, Opportunity"),
                          ("05-pipeline", "Opportunities and the Pipeline View"),
                          ("06-mobile", "The CRM on Your Phone"),
                      ), ("logs_every_lead_contact", "frequency_of_use"))


@dataclass(frozen=True)
class _GoLive:
    """When each sales team goes live on the new CRM, and how fast it answers leads in the old one."""

    sc: _CrmScenario
    manager: np.ndarray  # per team: the manager's user index
    team: np.ndarray  # per rep: team index
    day: np.ndarray  # per team: go-live day index
    log_hours: np.ndarray  # per team: τ, the log of its typical first-response hours in the old CRM
    month_shock: np.ndarray  # per team and calendar month of the period: η, shared by the team's leads that month
    month_of_day: np.ndarray  # per day index: the calendar month of the period it falls in (0, 1, …)

    def training_window(self) -> tuple[np.ndarray, np.ndarray]:
        """Each rep's days ``[lo, hi)`` to complete CRM Basics in: the first days of the team's go-live."""
        lo = self.day[self.team]
        return lo, lo + self.sc.training_days

    def leads(self, cal: _Calendar, org: _Org, owner: np.ndarray, created: np.ndarray, status: np.ndarray,
              conv_day: np.ndarray, conv_acc: np.ndarray, seed: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Draw the leads' potential outcomes in the old and the new CRM; return what the CRM shows.

        ``status`` (0: converted), ``conv_day`` and ``conv_acc`` are the leads' in the old CRM. They
        come back as observed, with the truth columns; a lead answered is no longer "not contacted".
        """
        rng = _stream(seed, "crm-golive-leads")
        n, sc, team = owner.size, self.sc, self.team[owner]
        day = created // _DAY - cal.start_day
        exposed = day >= self.day[team]
        month = self.month_of_day[np.clip(day, 0, self.month_of_day.size - 1)]
        shared = self.log_hours[team] + self.month_shock[team, month]
        hours = np.exp(shared + sc.response_sigma * rng.standard_normal(n))
        r0 = np.maximum(60, np.rint(3600 * hours)).astype(np.int64)
        r1 = np.maximum(60, np.rint(sc.response_factor * r0)).astype(np.int64)
        converted0 = status == 0
        lag = rng.integers(1, 31, n)
        converted1 = converted0 | ((rng.random(n) < sc.conversion_points / (1 - _LEAD_CONVERSION))
                                   & (day + lag < cal.n_days))
        respond_s = created + np.where(exposed, r1, r0)
        gained = exposed & converted1 & ~converted0
        status = np.where(gained, 0, np.where((status == 1) & (respond_s < cal.end_s), 2, status))
        truth = {"_owner": owner, "_exposed": exposed, "_response_s0": r0, "_response_s1": r1,
                 "_respond_s": respond_s, "_converted0": converted0, "_converted1": converted1}
        return (status, np.where(gained, day + lag, conv_day),
                np.where(gained, org.acc_start[owner] + org.acc_selling[owner], conv_acc), truth)


def _go_live(cal: _Calendar, org: _Org, sc: _CrmScenario, seed: int) -> _GoLive:
    """Spread the sales teams at random and evenly over the go-live waves; draw their response habits."""
    rng = _stream(seed, "crm-golive")
    manager = np.flatnonzero(org.kind == 1)
    waves = np.array([cal.day_at(f) for f in sc.go_live])
    wave = np.empty(manager.size, np.int64)
    wave[rng.permutation(manager.size)] = np.arange(manager.size) % waves.size
    log_hours = math.log(sc.response_median_hours) + sc.response_team_sigma * rng.standard_normal(manager.size)
    month_of_day = cal.month_of_period()
    shocks = _stream(seed, "crm-golive-team-months").standard_normal((manager.size, int(month_of_day[-1]) + 1))
    return _GoLive(sc=sc, manager=manager, team=np.searchsorted(manager, org.manager[: org.n_reps]),
                   day=waves[wave], log_hours=log_hours, month_shock=sc.response_team_month_sigma * shocks,
                   month_of_day=month_of_day)


def _crm_costs_frame(cal: _Calendar, org: _Org, lr: _Learners, g: _GoLive) -> pl.DataFrame:
    """Build ``costs.csv`` of the CRM rollout: implementation, seats from each team's go-live, training, support."""
    d, program, users = cal.start_day, _CRM_COURSE.program, org.kind.size
    first, last = int(g.day.min()), int(g.day.max())
    lines: list[_CostLine] = [
        (program, "development", 80_000 + 120.0 * users, d + first - 90,
         'Implementation partner "Northwind Consulting": configuration, integrations (SOW CRM-2024-07)'),
        (program, "development", 15_000 + 25.0 * users, d + first - 30,
         "Data migration: leads, accounts, contacts and open opportunities"),
        (program, "evaluation", 8_000 + 2.0 * users, min(d + last + 120, d + cal.n_days - 1),
         "Evaluation: lead response and conversion analysis"),
        _lms_subscription(cal, lr),
    ]
    for day in np.unique(g.day).tolist():
        teams = np.flatnonzero(g.day == day)
        reps = int(np.isin(g.team, teams).sum())
        lines.append((program, "facilitation", 2_500 + 150.0 * reps, min(d + day + g.sc.training_days,
                                                                          d + cal.n_days - 1),
                      f"CRM Basics sessions for the {_iso_date(d + day)} go-live: {teams.size} teams, {reps} reps"))
    live_from = g.day[g.team]
    employed_from, employed_until = org.hire_day[: org.n_reps], org.leave_day[: org.n_reps]
    for month, day, after in cal.months_before(cal.n_days):
        if day < first:
            continue
        seats = int(((live_from <= day) & (employed_from <= day) & (employed_until > day)).sum()
                    + (g.day <= day).sum())  # the live teams' reps in post, and their managers
        hypercare = bool(((day >= g.day) & (day < g.day + 45)).any())
        month_end = d + after - 1
        lines += [(program, "licensing", g.sc.seat_month * seats, d + day,
                   f"CRM licences, {seats} users, {month:%B %Y}"),
                  (program, "administration", 12_000.0 if hypercare else 5_000.0, month_end,
                   f"CRM administration and support desk{', go-live hypercare' if hypercare else ''}, {month:%B %Y}")]
    return _cost_frame(lines)


def _golive_frames(cal: _Calendar, org: _Org, g: _GoLive, leads: pl.DataFrame,
                   reps_df: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return truth_reps.csv with each rep's team and go-live date, and truth_leads.parquet."""
    team_id, go_live = org.user_id.gather(g.manager), _dates(cal.start_day + g.day)
    team = g.team[leads["_owner"].to_numpy()]
    reps_df = reps_df.with_columns(team_id=team_id.gather(g.team), go_live_date=go_live.gather(g.team))
    lead_df = pl.DataFrame({
        "lead_id": leads["Id"],
        "owner_id": leads["OwnerId"],
        "team_id": team_id.gather(team),
        "created_date": leads["CreatedDate"].str.slice(0, 10).str.to_date(),
        "go_live_date": go_live.gather(team),
        "exposed": leads["_exposed"],
        "is_deleted": leads["IsDeleted"],
        "response_seconds0": leads["_response_s0"],
        "response_seconds1": leads["_response_s1"],
        "responded": leads["_respond_s"] < cal.end_s,
        "converted0": leads["_converted0"],
        "converted1": leads["_converted1"],
    })
    return reps_df, lead_df


def _lead_figures() -> list[pl.Expr]:
    """The exact effect on the exposed leads as aggregations: per team (``group_by``) or overall."""
    live = pl.col("exposed") & ~pl.col("is_deleted")
    answered = live & pl.col("responded")
    h0, h1 = (pl.col(f"response_seconds{k}").filter(answered) / 3600 for k in (0, 1))
    c0, c1 = (pl.col(f"converted{k}").filter(live).cast(pl.Int64) for k in (0, 1))
    return [
        live.sum().alias("leads"),
        answered.sum().alias("leads_answered"),
        (h1 - h0).mean().alias("att_first_response_hours"),
        h1.mean().alias("mean_first_response_hours_observed"),
        h0.mean().alias("mean_first_response_hours_counterfactual"),
        h1.median().alias("median_first_response_hours_observed"),
        h0.median().alias("median_first_response_hours_counterfactual"),
        (c1 - c0).mean().alias("att_conversion_rate"),
        c1.mean().alias("conversion_rate_observed"),
        c0.mean().alias("conversion_rate_counterfactual"),
        (c1 - c0).sum().alias("incremental_conversions"),
    ]


_CRM_DEFINITIONS = {
    "crm": (
        "scenario crm_golive: the program is a new CRM that each sales team (a manager and the reps with that "
        "ManagerId) starts using on its go_live_date; its effect is on leads, not deals"
    ),
    "crm.teams.<i>.go_live_date": "the UTC date the team goes live; team_id is the manager's User Id",
    "lead exposed": (
        "a lead is exposed when the UTC date of its CreatedDate is on or after its owner's team's go_live_date"
    ),
    "lead potential outcomes": (
        "every lead draws Z once: response_seconds0 = round(3600·exp(τ_team + η_team,month + σ·Z)) in the old CRM, "
        "response_seconds1 = round(first_response_factor · response_seconds0) in the new one; converted0 / converted1 "
        "whether it converts within the period either way. The CRM shows the new CRM's outcomes for exposed leads, "
        "the old one's for the others. truth_leads.parquet has both, per lead. For leads never exposed the new "
        "CRM's outcomes are what it would have done"
    ),
    "first response": (
        "hours from a lead's CreatedDate to the CreatedDate of the first Task on it (WhoId = the lead's Id). A "
        "response after the period's end is not in Task.csv: the lead is not 'responded'"
    ),
    "crm.overall / crm.teams": (
        "exact effect on the exposed, non-deleted leads (IsDeleted false), overall and per team. The response "
        "figures are over those of them responded within the period (leads_answered); the conversion figures over "
        "all of them (leads)"
    ),
    "crm.*.att_first_response_hours": "mean of response_seconds1 − response_seconds0, in hours (negative: faster)",
    "crm.*.mean_ / median_first_response_hours_observed / _counterfactual": (
        "mean / median of response_seconds1 / response_seconds0, in hours"
    ),
    "crm.*.att_conversion_rate": "mean of converted1 − converted0, in proportion units (0.06 = 6 points)",
    "crm.*.incremental_conversions": "Σ (converted1 − converted0): leads converted only thanks to the new CRM",
    "effects.first_response_factor": "structural: response_seconds1 = factor × response_seconds0, for every lead",
    "effects.conversion_points": (
        "structural: leads not converted in the old CRM convert in the new one with probability "
        "conversion_points / (1 − model.crm.lead_conversion_share), i.e. that many points more in expectation"
    ),
    "effects.win_logit / deal_size / cycle": "0: the new CRM does nothing to deals; the sales KPIs are a placebo",
    "diagnostics.naive_before_after_*": (
        "observed mean over the non-deleted leads created on or after their team's go-live minus over those "
        "created before it (first response: of the leads responded within the period)"
    ),
}


def _golive_truth(truth: dict[str, Any], g: _GoLive, org: _Org, reps_df: pl.DataFrame, leads: pl.DataFrame,
                  costs: pl.DataFrame) -> dict[str, Any]:
    """Turn the sales scenarios' truth.json into the go-live's: program, effects, model, the leads' truth, costs."""
    sc = g.sc
    teams = (
        reps_df.group_by("team_id", "go_live_date").agg(reps=pl.len())
        .join(pl.DataFrame({"team_id": org.user_id.gather(g.manager), "manager": org.users["Name"].gather(g.manager),
                            "region": _region_names(org, g.manager)}), on="team_id")
        .join(leads.group_by("team_id").agg(_lead_figures()), on="team_id", how="left")
        .sort("go_live_date", "team_id")
    )
    shown = {k: pl.when(pl.col("exposed")).then(f"{k}1").otherwise(f"{k}0") for k in ("response_seconds", "converted")}
    naive = {exposed: (hours, rate) for exposed, hours, rate in leads.filter(~pl.col("is_deleted")).group_by("exposed")
             .agg(shown["response_seconds"].filter(pl.col("responded")).mean() / 3600,
                  shown["converted"].cast(pl.Int64).mean()).iter_rows()}
    before, after = naive.get(False, (None, None)), naive.get(True, (None, None))
    program = _CRM_COURSE.program
    mine = costs.filter(pl.col("program") == program)
    model = {k: v for k, v in truth["model"].items()
             if k not in ("assignment", "enrol_share", "selection_skill", "timing_skill")}
    return truth | {
        "scenario_description": sc.description,
        "program": truth["program"] | {
            "name": program, "program_activity_id": _CRM_COURSE.program_id,
            "course_activity_id": _CRM_COURSE.course_id, "course_title": _CRM_COURSE.title,
            "lesson_activity_ids": [f"{_CRM_COURSE.course_id}/lesson/{slug}" for slug, _ in _CRM_COURSE.lessons],
        },
        "effects": {"first_response_factor": sc.response_factor, "conversion_points": sc.conversion_points,
                    "win_logit": 0.0, "deal_size": 0.0, "cycle": 0.0, "ramp_days": 0},
        "model": model | {"crm": {
            "go_live_fractions": list(sc.go_live), "response_median_hours": sc.response_median_hours,
            "response_team_log_sigma": sc.response_team_sigma, "response_log_sigma": sc.response_sigma,
            "response_team_month_log_sigma": sc.response_team_month_sigma,
            "lead_conversion_share": _LEAD_CONVERSION, "training_days": sc.training_days,
            "licence_per_user_month": sc.seat_month}},
        "crm": {
            "go_live_dates": sorted({t["go_live_date"].isoformat() for t in teams.to_dicts()}),
            "overall": leads.select(_lead_figures()).to_dicts()[0],
            "teams": teams.to_dicts(),
            "leads_file": "truth_leads.parquet",
        },
        "diagnostics": truth["diagnostics"] | {
            "naive_before_after_first_response_hours": _diff(after[0], before[0]),
            "naive_before_after_conversion_rate": _diff(after[1], before[1]),
        },
        "costs": truth["costs"] | {
            "program_total": round(float(mine["amount"].sum()), 2),
            "by_category": {c: round(float(a), 2) for c, a in mine.group_by("category").agg(pl.col("amount").sum())
                            .sort("category").iter_rows()},
        },
        "definitions": {k: v for k, v in truth["definitions"].items() if not k.startswith("effects.")}
        | _CRM_DEFINITIONS,
    }
