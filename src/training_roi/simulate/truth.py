"""truth.json and the truth files of the sales scenarios: the exact effect, the settings, the mess.

The effect in each window is a sum over deals of their two potential outcomes, in integer cents
where money is summed. The naive comparisons (``diagnostics``) come from the observed data, to
show the traps; they are not the truth. ``_DEFINITIONS`` says what each entry means; the other
scenarios extend or trim it. The sales scenarios' windows also hold the revenue by two definitions,
booked and eventual (:mod:`training_roi.simulate.revenue`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from training_roi.simulate.fields import _dates, _masked, _sf_datetime
from training_roi.simulate.learners import _Learners
from training_roi.simulate.opportunities import (
    _AMOUNT_MEDIAN,
    _AMOUNT_SIGMA,
    _AMOUNT_SKILL,
    _AMOUNT_TREND_PER_YEAR,
    _BASE_WIN_LOGIT,
    _CYCLE_MEDIAN,
    _CYCLE_SIGMA,
    _OPPS_PER_REP_MONTH,
    _SEASON,
    _SKILL_RATE,
    _SKILL_WIN_LOGIT,
    _TREND_WIN_LOGIT_PER_YEAR,
    _TYPE_AMOUNT,
    _TYPE_CYCLE,
    _TYPE_SHARE,
    _TYPE_WIN_LOGIT,
    _TYPES,
    _Opps,
)
from training_roi.simulate.org import _Org, _region_names
from training_roi.simulate.period import _NEVER, _Calendar, _iso_date
from training_roi.simulate.program import _COURSE_ID, _COURSE_NAME, _LESSONS, _PROGRAM, _PROGRAM_ID
from training_roi.simulate.revenue import _REVENUE_DEFINITIONS, _cents, _revenue_truth
from training_roi.simulate.scenarios import _Scenario
from training_roi.simulate.statements import _LmsCounts
from training_roi.simulate.training import _DROPOUT_SHARE, _Training

_WINDOWS = (90, 180, 365)
_PRIMARY_WINDOW = 180

_MODEL_VERSION = 1

_DEFINITIONS = {
    "scenario": "name of the scenario simulated; scenario_description says what it means",
    "start": "first day of the simulated period (UTC date)",
    "end": "first day after the simulated period (exclusive): the period is [start, end)",
    "program.rollout_start / rollout_end": "window in which the program's completions were scheduled",
    "effects.win_logit": "structural effect of training on the log-odds of winning a deal",
    "effects.deal_size": "structural effect on deal size: amount1 = amount0 × (1 + deal_size × ramp)",
    "effects.cycle": "structural effect on cycle length: cycle1 = cycle0 × (1 − cycle × ramp), in days",
    "effects.ramp_days": (
        "0: full effect from the day after completion; else ramp = min(1, days since completion / ramp_days)"
    ),
    "trained": (
        "a rep (CRM User) is trained when the LMS holds a non-voided xAPI 'completed' statement on the "
        "course activity; completion_date is the UTC date of the earliest such statement's timestamp. A rep "
        "whose only course completion was voided is not trained"
    ),
    "exposed": (
        "an opportunity is exposed (treated) when its owner is trained and the UTC date of its CreatedDate is "
        "after the owner's completion_date; days_since_completion = created date − completion_date"
    ),
    "potential outcomes": (
        "every opportunity draws U ~ Uniform once; won0 = U < p0 and won1 = U < p1 (common random numbers); "
        "amount0/amount1 and cycle0/cycle1 are the untreated/treated deal size and cycle length in days. "
        "Observed values are the treated ones for exposed opportunities, else the untreated ones. "
        "For opportunities never exposed, the treated values are what full-strength training would have done"
    ),
    "truth.windows.<W>": (
        "exact effect on the opportunities of trained reps created 1..W days after their completion_date "
        "(W = 90, 180, 365; 'all' = any time after), not deleted (IsDeleted false). Opportunities after the "
        "period's end do not exist, so long windows are cut at end"
    ),
    "truth.windows.<W>.opportunities": "number of such opportunities (open or closed)",
    "truth.windows.<W>.closed": "those closed (CloseDate before end) as observed, i.e. under treatment",
    "truth.windows.<W>.att_win_rate": "mean of won1 − won0 over the closed ones, in proportion units (0.02 = 2 points)",
    "truth.windows.<W>.att_avg_won_deal_size": (
        "average amount1 of the closed deals won under treatment minus average amount0 of the closed deals that "
        "would have been won without it (the 'average won deal size' KPI, treated minus counterfactual)"
    ),
    "truth.windows.<W>.att_cycle_days": "mean of cycle1 − cycle0 over the closed ones, in days (negative = faster)",
    "truth.windows.<W>.incremental_revenue": (
        "Σ (won1·amount1 − won0·amount0) over the closed ones, in the org currency"
    ),
    "truth.windows.<W>.won_revenue_observed": "Σ won1·amount1 over the closed ones (what the CRM shows)",
    "truth.windows.<W>.won_revenue_counterfactual": "Σ won0·amount0 over the closed ones (had they not been trained)",
    "truth.windows.<W>.incremental_won_deals": "Σ (won1 − won0) over the closed ones",
    "truth.windows.<W>.incremental_revenue_booked": (
        "Σ won1·amount1·[closes before end under treatment] − Σ won0·amount0·[closes before end without], over "
        "all the window's opportunities: also credits deals that close within the period only because training "
        "shortened their cycle"
    ),
    "truth.windows.<W>.reps": "number of trained reps with at least one opportunity in the window",
    "diagnostics": (
        "naive comparisons computed from the observed data, to show the traps: they are not the truth. "
        "pre-period = opportunities created before rollout_start; post-period = created on or after rollout_end; "
        "win rates over closed, non-deleted opportunities"
    ),
    "mess.duplicate_statements": "statements written twice with the same id (extra lines; the copies are identical)",
    "mess.malformed_lines": (
        "lines of statements.jsonl that are not a JSON object (truncated lines, a JSON string, HTML)"
    ),
    "mess.voided_completions": (
        "course 'completed' statements cancelled by a 'voided' statement (object StatementRef); equals the number "
        "of voiding statements"
    ),
    "mess.account_actor_statements": "well-formed statements whose actor is identified only by account (learner id)",
    "mess.account_actor_unknown_learner_statements": "of those, statements whose learner id is not in learners.csv",
    "mess.mixed_case_email_statements": (
        "statements whose actor mbox has upper-case letters (e.g. mailto:Jane.Doe@Example.COM)"
    ),
    "mess.mixed_case_email_learners": "learners whose mbox is written with upper-case letters in their statements",
    "mess.mixed_case_directory_emails": "rows of learners.csv whose email has upper-case letters",
    "mess.learners_without_crm_user": "rows of learners.csv (partners, contractors) with no CRM User of that email",
    "mess.timestamps_with_offset": "statements whose timestamp carries a non-Z offset such as -05:00 or +02:00",
    "mess.is_deleted_rows": "rows with IsDeleted = true per Salesforce object",
    "mess.opportunities_without_amount": "Opportunity rows with an empty Amount (never on won deals)",
    "files": "data rows written per file (CSV rows without the header, JSON lines including mess)",
}

# What the sales scenarios' truth.json says beyond (or more precisely than) the shared definitions.
_SALES_DEFINITIONS = {
    "trained": (
        "a rep (CRM User) is trained when the LMS holds a non-voided xAPI 'completed' statement on the "
        "course activity, or a completions.csv row of the course (course_id = course_activity_id) with "
        "completed_at (learners whose tool sends no xAPI); completion_date is the UTC date of the earliest such "
        "completion. A rep whose only course completion was voided is not trained"
    ),
    "truth.windows.<W>.incremental_revenue_booked": (
        "over the window's opportunities (created 1..W days after completion_date), Σ won1·amount1·[closes "
        "before end under treatment] − Σ won0·amount0·[closes before end without], whenever in the period they "
        "close: also credits deals that close within the period only because training shortened their cycle. "
        "Not definition (a): see revenue_closing_in_window"
    ),
    **_REVENUE_DEFINITIONS,
}


def _in_window(o: _Opps, window: int | None) -> np.ndarray:
    """The exposed, non-deleted opportunities created at most ``window`` days after training (None: any time)."""
    sel: np.ndarray = o.exposed & ~o.deleted
    if window is not None:
        sel &= o.days_since <= window
    return sel


def _att_win_rate(o: _Opps, closed: np.ndarray) -> float | None:
    """Mean of won1 − won0 over the opportunities in ``closed``; None when there are none."""
    return float((o.won1[closed].astype(np.int64) - o.won0[closed]).mean()) if closed.any() else None


def _window_truth(cal: _Calendar, o: _Opps, window: int | None) -> dict[str, Any]:
    """Return the exact effect on the opportunities created within ``window`` days of completion."""
    sel = _in_window(o, window)
    closed = sel & o.closed
    c0, c1 = _cents(o.amount0), _cents(o.amount1)
    w0, w1 = closed & o.won0, closed & o.won1
    b0 = sel & o.won0 & (o.created_day + o.cycle0 < cal.n_days)
    b1 = sel & o.won1 & (o.created_day + o.cycle1 < cal.n_days)
    n_closed = int(closed.sum())
    both_won = w0.any() and w1.any()
    return {
        "opportunities": int(sel.sum()),
        "closed": n_closed,
        "reps": int(np.unique(o.owner[sel]).size),
        "att_win_rate": _att_win_rate(o, closed),
        "att_avg_won_deal_size": round(float(c1[w1].mean() - c0[w0].mean()) / 100, 4) if both_won else None,
        "att_cycle_days": float((o.cycle1[closed] - o.cycle0[closed]).mean()) if n_closed else None,
        "incremental_revenue": int(c1[w1].sum() - c0[w0].sum()) / 100,
        "won_revenue_observed": int(c1[w1].sum()) / 100,
        "won_revenue_counterfactual": int(c0[w0].sum()) / 100,
        "incremental_won_deals": int(w1.sum() - w0.sum()),
        "incremental_revenue_booked": int(c1[b1].sum() - c0[b0].sum()) / 100,
    }


def _win_rate(mask: np.ndarray, o: _Opps) -> float | None:
    """Return the observed win rate over the closed, non-deleted opportunities in ``mask``."""
    m = mask & o.closed & ~o.deleted
    return float(o.won[m].mean()) if m.any() else None


def _diff(a: float | None, b: float | None) -> float | None:
    """Return ``a − b``, or None when either is unknown."""
    return None if a is None or b is None else a - b


def _naive_comparisons(o: _Opps, trained: np.ndarray, roll_lo: int, roll_hi: int) -> dict[str, float | None]:
    """Observed win rates of trained and untrained units before and after the roll-out, and naive differences.

    ``trained`` is per opportunity: its unit (owner or account) was trained at some time, and
    ``o.days_since`` counts from then. Pre-period deals are created before ``roll_lo``, post-period
    ones on or after ``roll_hi``; before / after is the primary window around the training.
    """
    pre = o.created_day < roll_lo
    post = o.created_day >= roll_hi
    pre_t, pre_u = _win_rate(pre & trained, o), _win_rate(pre & ~trained, o)
    post_t, post_u = _win_rate(post & trained, o), _win_rate(post & ~trained, o)
    before = trained & (o.days_since >= -_PRIMARY_WINDOW) & (o.days_since <= 0)
    after = trained & (o.days_since >= 1) & (o.days_since <= _PRIMARY_WINDOW)
    b, a = _win_rate(before, o), _win_rate(after, o)
    return {
        "pre_period_win_rate_trained": pre_t,
        "pre_period_win_rate_untrained": pre_u,
        "post_period_win_rate_trained": post_t,
        "post_period_win_rate_untrained": post_u,
        "naive_trained_minus_untrained_post": _diff(post_t, post_u),
        "naive_before_after_trained_180d": _diff(a, b),
    }


def _diagnostics(org: _Org, tr: _Training, o: _Opps) -> dict[str, Any]:
    """Naive comparisons on observed data: the numbers a careless analysis would report."""
    trained = tr.complete_day < _NEVER
    return {
        "skill_mean_trained": float(org.skill[trained].mean()) if trained.any() else None,
        "skill_mean_untrained": float(org.skill[~trained].mean()) if (~trained).any() else None,
        **_naive_comparisons(o, trained[o.owner], tr.roll_lo, tr.roll_hi),
    }


def _truth_frames(cal: _Calendar, org: _Org, lr: _Learners, tr: _Training,
                  o: _Opps) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Return truth_reps.csv, truth_trained.csv and truth_opportunities.parquet as frames."""
    reps = org.n_reps
    trained = tr.complete_day < _NEVER
    comp_date = _masked(_dates(cal.start_day + np.where(trained, tr.complete_day, 0)), trained)
    comp_ts = _masked(_sf_datetime(np.where(trained, tr.complete_s, cal.start_s)), trained)
    reps_df = pl.DataFrame({
        "user_id": org.user_id.head(reps),
        "email": org.email.head(reps),
        "learner_id": lr.learner_id.head(reps),
        "region": _region_names(org, np.arange(reps)),
        "skill": np.round(org.skill, 6),
        "eligible": tr.eligible,
        "enrolled": tr.enrolled,
        "dropout": tr.dropout,
        "voided_only": tr.voided_only,
        "voided_then_real": tr.voided_then_real,
        "trained": trained,
        "completion_date": comp_date,
        "completion_timestamp": comp_ts,
    })
    trained_df = (
        reps_df.filter(pl.col("trained"))
        .select("user_id", "email", "learner_id", "completion_date")
        .sort(["completion_date", "user_id"])
    )
    ever = tr.complete_day[o.owner] < _NEVER
    opp_df = pl.DataFrame({
        "opportunity_id": o.opp_id,
        "owner_id": org.user_id.gather(o.owner),
        "created_date": _dates(cal.start_day + o.created_day),
        "exposed": o.exposed,
        "days_since_completion": _masked(pl.Series(o.days_since), ever),
        **_potential_outcomes(o),
    })
    return reps_df, trained_df, opp_df


def _potential_outcomes(o: _Opps) -> dict[str, np.ndarray]:
    """The columns of truth_opportunities.parquet every scenario has: deleted, closed, both outcomes."""
    return {
        "is_deleted": o.deleted,
        "is_closed": o.closed,
        "p0": o.p0, "p1": o.p1,
        "won0": o.won0, "won1": o.won1,
        "amount0": o.amount0, "amount1": o.amount1,
        "cycle0": o.cycle0, "cycle1": o.cycle1,
    }


def _by_month(cal: _Calendar, days: np.ndarray) -> dict[str, int]:
    """Count day indices by calendar month (``YYYY-MM``), in order."""
    months = [_iso_date(cal.start_day + d)[:7] for d in days.tolist()]
    return {m: months.count(m) for m in sorted(set(months))}


def _header(cal: _Calendar, scenario: str, description: str, seed: int, reps: int) -> dict[str, Any]:
    """The first entries of truth.json: the generator, the scenario and the settings."""
    return {
        "generator": {"module": "training_roi.simulate", "model_version": _MODEL_VERSION},
        "scenario": scenario,
        "scenario_description": description,
        "seed": seed,
        "reps": reps,
        "months": cal._months(),
        "start": cal.start.isoformat(),
        "end": cal.end.isoformat(),
    }


def _model_cycle_median(sc: _Scenario) -> float:
    """The median cycle of a New Business deal in days: the scenario's, or the model's."""
    return _CYCLE_MEDIAN if sc.cycle_median is None else sc.cycle_median


def _cost_totals(costs: pl.DataFrame, program: str) -> dict[str, float]:
    """The program's total of ``costs.csv``, and the total of the shared lines (no program)."""
    return {
        "program_total": round(float(costs.filter(pl.col("program") == program)["amount"].sum()), 2),
        "shared_total": round(float(costs.filter(pl.col("program").is_null())["amount"].sum()), 2),
    }


def _truth(cal: _Calendar, name: str, sc: _Scenario, seed: int, org: _Org, lr: _Learners, tr: _Training,
           o: _Opps, lms: _LmsCounts, deleted: dict[str, int], costs: pl.DataFrame,
           files: dict[str, int]) -> dict[str, Any]:
    """Assemble truth.json: settings, structural parameters, the exact effect, and the mess."""
    trained = tr.complete_day < _NEVER
    user_emails = set(org.email.to_list())
    directory = lr.dir_email.filter(pl.Series(lr.in_directory)).to_list()
    owner_trained = trained[o.owner]

    def window(w: int | None) -> dict[str, Any]:
        return _window_truth(cal, o, w) | _revenue_truth(cal.n_days, o, owner_trained, w)

    return _header(cal, name, sc.description, seed, org.n_reps) | {
        "export_date": _iso_date(cal.start_day + cal.n_days - 1),
        "program": {
            "name": _PROGRAM,
            "program_activity_id": _PROGRAM_ID,
            "course_activity_id": _COURSE_ID,
            "course_title": _COURSE_NAME,
            "lesson_activity_ids": [f"{_COURSE_ID}/lesson/{slug}" for slug, _ in _LESSONS],
            "rollout_start": _iso_date(cal.start_day + tr.roll_lo),
            "rollout_end": _iso_date(cal.start_day + tr.roll_hi),
        },
        "effects": {"win_logit": sc.win_logit, "deal_size": sc.deal_size, "cycle": sc.cycle,
                    "ramp_days": sc.ramp_days},
        "model": {
            "opportunities_per_rep_month": _OPPS_PER_REP_MONTH,
            "skill_log_rate": _SKILL_RATE,
            "base_win_logit": _BASE_WIN_LOGIT,
            "skill_win_logit": _SKILL_WIN_LOGIT,
            "trend_win_logit_per_year": _TREND_WIN_LOGIT_PER_YEAR,
            "season_win_logit_by_month": list(_SEASON),
            "types": {t: {"share": s, "win_logit": w, "amount_factor": a, "cycle_factor": c}
                      for t, s, w, a, c in zip(_TYPES, _TYPE_SHARE, _TYPE_WIN_LOGIT, _TYPE_AMOUNT, _TYPE_CYCLE,
                                               strict=True)},
            "amount_median": _AMOUNT_MEDIAN, "amount_log_sigma": _AMOUNT_SIGMA,
            "amount_skill": _AMOUNT_SKILL, "amount_trend_per_year": _AMOUNT_TREND_PER_YEAR,
            "cycle_median_days": _model_cycle_median(sc), "cycle_log_sigma": _CYCLE_SIGMA,
            "assignment": sc.assignment, "enrol_share": sc.enrol_share,
            "selection_skill": sc.selection_skill, "timing_skill": sc.timing_skill,
            "dropout_share": _DROPOUT_SHARE,
        },
        "truth": {
            "primary_window_days": _PRIMARY_WINDOW,
            "windows": {str(w): window(w) for w in _WINDOWS} | {"all": window(None)},
        },
        "trained": {
            "reps": int(trained.sum()),
            "eligible_reps": int(tr.eligible.sum()),
            "enrolled_reps": int(tr.enrolled.sum()),
            "dropout_reps": int(tr.dropout.sum()),
            "voided_only_reps": int(tr.voided_only.sum()),
            "voided_then_real_reps": int(tr.voided_then_real.sum()),
            "partner_learners_trained": int((tr.e_complete_s[tr.e_learner >= lr.n_users] >= 0).sum()),
            "by_completion_month": _by_month(cal, tr.complete_day[trained]),
            "file": "truth_trained.csv",
            "reps_file": "truth_reps.csv",
            "opportunities_file": "truth_opportunities.parquet",
        },
        "diagnostics": _diagnostics(org, tr, o),
        "mess": {
            "duplicate_statements": lms.duplicate_statements,
            "malformed_lines": lms.malformed_lines,
            "voided_completions": lms.voided_completions,
            "account_actor_statements": lms.account_actor_statements,
            "account_actor_unknown_learner_statements": lms.account_actor_unknown_learner_statements,
            "mixed_case_email_statements": lms.mixed_case_email_statements,
            "mixed_case_email_learners": int(lr.mixed_mbox.sum()),
            "mixed_case_directory_emails": int(lr.mixed_dir.sum()),
            "learners_without_crm_user": sum(1 for e in directory if e.lower() not in user_emails),
            "group_actor_statements": lms.group_actor_statements,
            "timestamps_with_offset": lms.timestamps_with_offset,
            "statements_distinct": lms.statements,
            "is_deleted_rows": deleted,
            "opportunities_without_amount": int(o.amount_missing.sum()),
        },
        "costs": _cost_totals(costs, _PROGRAM),
        "files": files,
        "definitions": _DEFINITIONS | _SALES_DEFINITIONS,
    }
