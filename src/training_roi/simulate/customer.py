"""Scenario ``customer``: customer education, and the truth about accounts.

The org's account managers (the CRM users who are reps in the sales scenarios) own a book of
customer accounts. The vendor's academy teaches the product to the customers' people; the outcome
is the account's later business: renewals and upsells. An account is trained from its first
contact's completion of the course, and every unit of the truth is an account
(``truth["unit"] == "account"``). This module writes the scenario's folder and its truth.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from training_roi.simulate.academy import (
    _ACADEMY,
    _ACADEMY_COURSE_ID,
    _ACADEMY_COURSE_NAME,
    _ACADEMY_LESSONS,
    _ACADEMY_PROGRAM_ID,
    _CS_DROPOUT,
    _CS_ENROL_SHARE,
    _CS_LIVE_SHARE,
    _CS_STRAY_ENROL,
    _Academy,
    _academy_completions_frame,
    _academy_costs_frame,
    _academy_learners_frame,
    _academy_surveys_frame,
    _assign_academy,
    _write_academy_statements,
)
from training_roi.simulate.crm import _case_frame, _history_frame, _opportunity_frame, _task_frame
from training_roi.simulate.customer_accounts import (
    _CS_ACCOUNTS_PER_MANAGER,
    _CS_ARR_HEADCOUNT,
    _CS_ARR_MEDIAN,
    _CS_ARR_SIGMA,
    _CS_CONTACTS_LOG_RATE,
    _CS_CONTACTS_SIZE,
    _CS_EMPLOYEES_MEDIAN,
    _CS_EMPLOYEES_SIGMA,
    _CS_MAX_CONTACTS,
    _CS_RENEWAL_CLOSE_SD,
    _CS_RENEWAL_LEAD_DAYS,
    _CS_UPSELL_AMOUNT_SHARE,
    _CS_UPSELL_AMOUNT_SIGMA,
    _CS_UPSELL_CYCLE_MEDIAN,
    _CS_UPSELL_ENGAGEMENT,
    _CS_UPSELL_SIZE,
    _CS_UPSELLS_PER_YEAR,
    _CS_WIN_LOGIT,
    _RENEWAL,
    _UPSELL,
    _build_customers,
    _Customers,
    _RenewalDrivers,
    _simulate_renewals,
)
from training_roi.simulate.customer_churn import _churn_model_truth, _draw_cases
from training_roi.simulate.fields import _dates, _masked, _sf_datetime
from training_roi.simulate.folder import _Folder
from training_roi.simulate.opportunities import (
    _AMOUNT_TREND_PER_YEAR,
    _SEASON,
    _TREND_WIN_LOGIT_PER_YEAR,
    _TYPES,
    _Opps,
)
from training_roi.simulate.org import _build_org, _Org
from training_roi.simulate.period import _DAY, _NEVER, _Calendar, _iso_date
from training_roi.simulate.revenue import _cents
from training_roi.simulate.scenarios import _CUSTOMER, _CUSTOMER_SCENARIO, _CustomerScenario
from training_roi.simulate.statements import _LmsCounts
from training_roi.simulate.truth import (
    _DEFINITIONS,
    _PRIMARY_WINDOW,
    _WINDOWS,
    _att_win_rate,
    _by_month,
    _cost_totals,
    _header,
    _in_window,
    _naive_comparisons,
    _potential_outcomes,
    _window_truth,
)

_CUSTOMER_DEFINITIONS = {
    "unit": "what the truth is about: 'account', the customer accounts whose contacts are the academy's learners",
    "effects.renewal_win_logit": "structural effect of the account's training on the log-odds of winning a renewal",
    "effects.upsell_win_logit": (
        "structural effect on the log-odds of winning an upsell (the upsell rate: the share of upsell "
        "opportunities the account buys); how many upsell opportunities arise does not change"
    ),
    "effects.deal_size / cycle / ramp_days": (
        "0: training changes neither amounts nor cycle lengths and works in full from the day after training"
    ),
    "trained": (
        "an account is trained when one of its contacts (a CRM Contact of the account, linked by email) completed "
        "the course: a non-voided xAPI 'completed' statement on the course activity, or a completions.csv row of "
        "the course with completed_at. training_date is the UTC date of the earliest such completion over the "
        "account's contacts. Learners who are no contact (outsiders) do not train an account, a voided completion "
        "does not count, and passing the final assessment (its own activity) is not completing the course"
    ),
    "learners": "number of the account's contacts who completed the course",
    "exposed": (
        "an opportunity is exposed (treated) when its account is trained and the UTC date of its CreatedDate is "
        "after the account's training_date; days_since_training = created date − training_date"
    ),
    "truth.windows.<W>": (
        "exact effect on the opportunities (renewals and upsells) of trained accounts created 1..W days after the "
        "account's training_date (W = 90, 180, 365; 'all' = any time after), not deleted (IsDeleted false). "
        "Opportunities after the period's end do not exist, so long windows are cut at end"
    ),
    "truth.windows.<W>.accounts": "number of trained accounts with at least one opportunity in the window",
    "truth.windows.<W>.reps": "number of account managers (CRM users) who own those opportunities",
    "truth.windows.<W>.by_type": "opportunities, closed, att_win_rate and incremental_revenue per opportunity Type",
    "truth.windows.<W>.att_win_rate_expected": (
        "mean of p1 − p0 over the closed ones: the win-rate effect these deals were expected to get, of which "
        "att_win_rate is the realised draw (with few deals the two differ by chance)"
    ),
    "diagnostics": (
        "naive comparisons of trained and untrained accounts on the observed data, to show the traps: they are not "
        "the truth. pre-period = opportunities created before rollout_start; post-period = created on or after "
        "rollout_end; win rates over closed, non-deleted opportunities"
    ),
    "model.churn_drivers": (
        "a renewal's log-odds of winning (renewing; churn is losing it) add renewal_win_logit_per_case × (support "
        "cases of the account created in the case_window_days before the renewal's CreatedDate − "
        "renewal_cases_centre) + renewal_win_logit_per_year_of_age × (years from the account's CreatedDate to the "
        "renewal's − renewal_age_centre_years) to win_logit.Renewal; cases arrive per account at cases_per_month × "
        "exp(cases_size_log_rate × size + cases_engagement_log_rate × engagement). truth_opportunities.parquet "
        "holds each renewal's cases_before_open (deleted cases included), account_age_years and churn_probability "
        "(1 − p1 when exposed, else 1 − p0)"
    ),
    "mess.learners_without_crm_contact": (
        "rows of learners.csv whose email is no CRM contact's: colleagues at customers the CRM does not know"
    ),
    "mess.not_simulated": "kinds of mess of the sales scenarios that this scenario does not write",
}


def _account_window_truth(cal: _Calendar, o: _Opps, window: int | None) -> dict[str, Any]:
    """The exact effect in one window (as the sales scenarios'), with accounts and a split by type."""
    out = _window_truth(cal, o, window)
    sel = _in_window(o, window)
    closed_all = sel & o.closed
    c0, c1 = _cents(o.amount0), _cents(o.amount1)
    by_type = {}
    for t in (_RENEWAL, _UPSELL):
        closed = sel & o.closed & (o.type == t)
        by_type[_TYPES[t]] = {
            "opportunities": int((sel & (o.type == t)).sum()),
            "closed": int(closed.sum()),
            "att_win_rate": _att_win_rate(o, closed),
            "incremental_revenue": int(c1[closed & o.won1].sum() - c0[closed & o.won0].sum()) / 100,
        }
    expected = float((o.p1[closed_all] - o.p0[closed_all]).mean()) if closed_all.any() else None
    return out | {"accounts": int(np.unique(o.account[sel]).size), "att_win_rate_expected": expected,
                  "by_type": by_type}


def _academy_diagnostics(cu: _Customers, ac: _Academy, o: _Opps) -> dict[str, Any]:
    """Naive comparisons of trained and untrained accounts: what a careless analysis would report."""
    trained = ac.train_day < _NEVER

    def mean(x: np.ndarray) -> float | None:
        return float(x.mean()) if x.size else None

    return {
        "engagement_mean_trained": mean(cu.engagement[trained]),
        "engagement_mean_untrained": mean(cu.engagement[~trained]),
        "employees_median_trained": float(np.median(cu.employees[trained])) if trained.any() else None,
        "employees_median_untrained": float(np.median(cu.employees[~trained])) if (~trained).any() else None,
        **_naive_comparisons(o, trained[o.account], ac.roll_lo, ac.roll_hi),
    }


def _renewal_truth(o: _Opps, drivers: _RenewalDrivers) -> dict[str, pl.Series]:
    """truth_opportunities.parquet's churn columns: each renewal's drivers and true churn probability.

    The churn probability is 1 − the probability of winning in the world observed (trained or
    not when the renewal was created); null for other types.
    """
    renewal = o.type == _RENEWAL
    p_won = np.where(o.exposed, o.p1, o.p0)
    return {
        "cases_before_open": _masked(pl.Series(drivers.cases), renewal),
        "account_age_years": _masked(pl.Series(np.round(drivers.age_years, 6)), renewal),
        "churn_probability": _masked(pl.Series(1.0 - p_won), renewal),
    }


def _academy_truth_frames(cal: _Calendar, org: _Org, cu: _Customers, ac: _Academy, o: _Opps,
                          drivers: _RenewalDrivers) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Return truth_accounts.csv, truth_trained.csv, truth_learners.csv and truth_opportunities.parquet."""
    n_acc = cu.engagement.size
    trained = ac.train_day < _NEVER
    acc = cu.person_account
    contact = np.arange(acc.size) < cu.n_contacts
    accounts = pl.DataFrame({
        "account_id": org.account_id,
        "name": org.account_name,
        "owner_id": org.user_id.gather(org.acc_owner),
        "employees": cu.employees,
        "size": np.round(cu.size, 6),
        "engagement": np.round(cu.engagement, 6),
        "arr": cu.arr,
        "contacts": org.con_count,
        "adopted": ac.adopted,
        "enrolled_contacts": np.bincount(acc[ac.enrolled & contact], minlength=n_acc),
        "trained": trained,
        "training_date": _masked(_dates(cal.start_day + np.where(trained, ac.train_day, 0)), trained),
        "training_timestamp": _masked(_sf_datetime(np.where(trained, ac.train_s, cal.start_s)), trained),
        "learners": ac.learners,
    })
    trained_df = (accounts.filter(pl.col("trained")).select("account_id", "training_date", "learners")
                  .sort(["training_date", "account_id"]))
    p = ac.person
    done = ac.complete_s[p] >= 0
    learners = pl.DataFrame({
        "learner_id": ac.learner_id,
        "email": cu.email.gather(p),
        "contact_id": _masked(org.contact_id.gather(np.minimum(p, cu.n_contacts - 1)), contact[p]),
        "account_id": org.account_id.gather(acc[p]),
        "is_contact": contact[p],
        "enrolled": ac.enrolled[p],
        "format": _masked(pl.Series(np.where(ac.live[p], "live", "online")), ac.enrolled[p]),
        "completed": done,
        "completion_date": _masked(_dates(np.where(done, ac.complete_s[p], 0) // _DAY), done),
        "voided_only": ac.voided_only[p],
        "voided_then_real": ac.voided_then_real[p],
        "account_actor": ac.by_account,
    })
    ever = ac.train_day[o.account] < _NEVER
    opps = pl.DataFrame({
        "opportunity_id": o.opp_id,
        "account_id": org.account_id.gather(o.account),
        "owner_id": org.user_id.gather(o.owner),
        "type": pl.Series(_TYPES).gather(o.type),
        "created_date": _dates(cal.start_day + o.created_day),
        "exposed": o.exposed,
        "days_since_training": _masked(pl.Series(o.days_since), ever),
        **_potential_outcomes(o),
        **_renewal_truth(o, drivers),
    })
    return accounts, trained_df, learners, opps


def _academy_truth(cal: _Calendar, sc: _CustomerScenario, seed: int, org: _Org, cu: _Customers, ac: _Academy,
                   o: _Opps, lms: _LmsCounts, deleted: dict[str, int], costs: pl.DataFrame,
                   files: dict[str, int]) -> dict[str, Any]:
    """Assemble truth.json of the customer scenario: the same structure, at the account level."""
    trained = ac.train_day < _NEVER
    contact = np.arange(cu.person_account.size) < cu.n_contacts
    done = ac.complete_s >= 0
    dropouts = ac.enrolled & ~done
    mess = {
        "duplicate_statements": lms.duplicate_statements,
        "malformed_lines": lms.malformed_lines,
        "voided_completions": lms.voided_completions,
        "account_actor_statements": lms.account_actor_statements,
        "mixed_case_email_statements": lms.mixed_case_email_statements,
        "mixed_case_email_learners": int(ac.mixed_mbox.sum()),
        "mixed_case_directory_emails": int(ac.mixed_dir.sum()),
        "learners_without_crm_contact": int((~contact[ac.person]).sum()),
        "timestamps_with_offset": lms.timestamps_with_offset,
        "statements_distinct": lms.statements,
        "is_deleted_rows": deleted,
        "opportunities_without_amount": int(o.amount_missing.sum()),
        "not_simulated": ["group actors", "learner ids missing from the directory", "one learner under two actors",
                          "deleted accounts and contacts", "leads"],
    }
    return _header(cal, _CUSTOMER_SCENARIO, sc.description, seed, org.n_reps) | {
        "unit": "account",
        "program": {
            "name": _ACADEMY,
            "program_activity_id": _ACADEMY_PROGRAM_ID,
            "course_activity_id": _ACADEMY_COURSE_ID,
            "course_title": _ACADEMY_COURSE_NAME,
            "lesson_activity_ids": [f"{_ACADEMY_COURSE_ID}/lesson/{slug}" for slug, _ in _ACADEMY_LESSONS],
            "assessment_activity_id": f"{_ACADEMY_COURSE_ID}/assessment",
            "rollout_start": _iso_date(cal.start_day + ac.roll_lo),
            "rollout_end": _iso_date(cal.start_day + ac.roll_hi),
        },
        "effects": {"scale": "log-odds", "renewal_win_logit": sc.renewal_logit, "upsell_win_logit": sc.upsell_logit,
                    "deal_size": 0.0, "cycle": 0.0, "ramp_days": 0},
        "model": {
            "accounts_per_manager": 1 + _CS_ACCOUNTS_PER_MANAGER,
            "employees_median": _CS_EMPLOYEES_MEDIAN, "employees_log_sigma": _CS_EMPLOYEES_SIGMA,
            "contacts_log_rate": _CS_CONTACTS_LOG_RATE, "contacts_size": _CS_CONTACTS_SIZE,
            "max_contacts": _CS_MAX_CONTACTS,
            "arr_median": _CS_ARR_MEDIAN, "arr_headcount_elasticity": _CS_ARR_HEADCOUNT, "arr_log_sigma": _CS_ARR_SIGMA,
            "renewal_lead_days": list(_CS_RENEWAL_LEAD_DAYS), "renewal_close_sd_days": _CS_RENEWAL_CLOSE_SD,
            "upsells_per_year": _CS_UPSELLS_PER_YEAR, "upsell_size_log_rate": _CS_UPSELL_SIZE,
            "upsell_engagement_log_rate": _CS_UPSELL_ENGAGEMENT, "upsell_amount_share": _CS_UPSELL_AMOUNT_SHARE,
            "upsell_amount_log_sigma": _CS_UPSELL_AMOUNT_SIGMA, "upsell_cycle_median_days": _CS_UPSELL_CYCLE_MEDIAN,
            "win_logit": {_TYPES[t]: {"intercept": a, "engagement": b, "size": c}
                          for t, (a, b, c) in _CS_WIN_LOGIT.items()},
            "churn_drivers": _churn_model_truth(),
            "trend_win_logit_per_year": _TREND_WIN_LOGIT_PER_YEAR,
            "season_win_logit_by_month": list(_SEASON),
            "amount_trend_per_year": _AMOUNT_TREND_PER_YEAR,
            "adopt_share": sc.adopt_share, "adopt_engagement": sc.adopt_engagement, "adopt_size": sc.adopt_size,
            "timing_engagement": sc.timing_engagement, "enrol_share": _CS_ENROL_SHARE,
            "stray_enrol_share": _CS_STRAY_ENROL, "live_class_share": _CS_LIVE_SHARE, "dropout_share": _CS_DROPOUT,
        },
        "truth": {
            "primary_window_days": _PRIMARY_WINDOW,
            "windows": {str(w): _account_window_truth(cal, o, w) for w in _WINDOWS}
            | {"all": _account_window_truth(cal, o, None)},
        },
        "trained": {
            "accounts": int(trained.sum()),
            "customer_accounts": int(trained.size),
            "adopted_accounts": int(ac.adopted.sum()),
            "learners": int(ac.learners.sum()),
            "enrolled_people": int(ac.enrolled.sum()),
            "completions_online": int((done & ~ac.live).sum()),
            "completions_live_class": int((done & ac.live).sum()),
            "outsiders_completed": int((done & ~contact).sum()),
            "dropouts": int(dropouts.sum()),
            "voided_only_learners": int(ac.voided_only.sum()),
            "voided_then_real_learners": int(ac.voided_then_real.sum()),
            "by_training_month": _by_month(cal, ac.train_day[trained]),
            "file": "truth_trained.csv",
            "accounts_file": "truth_accounts.csv",
            "learners_file": "truth_learners.csv",
            "opportunities_file": "truth_opportunities.parquet",
        },
        "diagnostics": _academy_diagnostics(cu, ac, o),
        "mess": mess,
        "costs": _cost_totals(costs, _ACADEMY),
        "files": files,
        "definitions": {k: v for k, v in _DEFINITIONS.items()
                        if not k.startswith("effects.") and (not k.startswith("mess.") or k[5:] in mess)}
        | _CUSTOMER_DEFINITIONS,
    }


def _simulate_customers(out: Path, cal: _Calendar, *, reps: int, seed: int,
                        report: Callable[[str, float], None]) -> dict[str, int]:
    """Write the customer scenario's folder and truth; return the data rows per file."""
    sc = _CUSTOMER
    report("Building the organisation and its customers", 0.0)
    org, cu = _build_customers(cal, _build_org(cal, reps, seed), seed)
    report("Rolling out the customer academy", 0.06)
    ac = _assign_academy(cal, org, cu, sc, seed)
    report("Simulating renewals, upsells and their potential outcomes", 0.08)
    cases = _draw_cases(cal, cu.size, cu.engagement, seed)
    opps, drivers = _simulate_renewals(cal, org, cu, ac.train_day, sc, seed, cases)
    folder = _Folder(out)
    report("Writing CRM users, accounts, contacts and opportunities", 0.14)
    folder.crm("User", org.users, bom=True)
    folder.crm("Account", org.accounts)
    folder.crm("Contact", org.contacts, bom=True)
    folder.crm("Opportunity", _opportunity_frame(cal, org, opps, seed), bom=True)
    folder.crm("OpportunityHistory", _history_frame(cal, org, opps, seed))
    folder.crm("Task", _task_frame(cal, org, opps, seed))
    folder.crm("Case", _case_frame(cal, org, seed, cases))
    report("Writing xAPI statements", 0.5)
    lms = _write_academy_statements(out / "lms" / "statements.jsonl", cal, ac, seed,
                                    lambda step, f: report(step, 0.5 + 0.38 * f))
    folder.files["lms/statements.jsonl"] = lms.lines
    report("Writing the academy directory, completion report, surveys and costs", 0.9)
    folder.csv("lms/learners.csv", _academy_learners_frame(cal, ac))
    folder.csv("lms/completions.csv", _academy_completions_frame(ac, seed))
    folder.csv("surveys.csv", _academy_surveys_frame(cal, cu, ac, seed))
    costs = _academy_costs_frame(cal, cu, ac)
    folder.csv("costs.csv", costs)

    report("Computing the truth", 0.94)
    accounts_df, trained_df, learners_df, opp_df = _academy_truth_frames(cal, org, cu, ac, opps, drivers)
    folder.csv("truth_accounts.csv", accounts_df, decimals=None)
    folder.csv("truth_trained.csv", trained_df)
    folder.csv("truth_learners.csv", learners_df)
    folder.parquet("truth_opportunities.parquet", opp_df)
    folder.truth(_academy_truth(cal, sc, seed, org, cu, ac, opps, lms, folder.deleted, costs, dict(folder.files)))
    report("Done", 1.0)
    return folder.files
