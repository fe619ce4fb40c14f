"""Scenario ``customer``'s churn drivers: support cases and account age, both in the CRM export.

A renewal is lost (the account churns) with a probability that the customer model sets from the
account's latent engagement and size (:data:`~training_roi.simulate.customer_accounts._CS_WIN_LOGIT`)
and from two drivers anyone can read in the CRM: the account's support cases created in the
:data:`_CS_CASE_WINDOW_DAYS` days before the renewal opened, and the account's age (years from its
CreatedDate to the renewal's). Cases come more often at less engaged and bigger accounts, so the
count also carries news of the engagement the CRM does not record. truth.json records every
coefficient, and truth_opportunities.parquet each renewal's drivers and its true churn probability,
so that a churn model's calibration can be checked against the truth rather than against the draw.
"""

from __future__ import annotations

import numpy as np

from training_roi.simulate.draws import _stream
from training_roi.simulate.period import _DAY, _Calendar

_CS_CASES_PER_MONTH = 0.09  # support cases per median account and month
_CS_CASES_SIZE = 0.3  # log-rate of cases per unit of size
_CS_CASES_ENGAGEMENT = -0.5  # … and per unit of engagement: disengaged customers call support more
_CS_CASE_WINDOW_DAYS = 180  # a renewal's case driver counts the account's cases this many days before it opens
# Log-odds of winning a renewal (renewing) per driver, centred so the intercept keeps its meaning.
_CS_RENEWAL_CASES = -0.35  # per support case in the window
_CS_RENEWAL_CASES_CENTRE = 0.6
_CS_RENEWAL_AGE = 0.12  # per year of account age when the renewal opens
_CS_RENEWAL_AGE_CENTRE = 3.0


def _draw_cases(cal: _Calendar, size: np.ndarray, engagement: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Each account's support cases over the period: (account index, UTC epoch seconds), in time order."""
    rng = _stream(seed, "customer-cases")
    rate = _CS_CASES_PER_MONTH * np.exp(_CS_CASES_SIZE * size + _CS_CASES_ENGAGEMENT * engagement)
    acc = np.repeat(np.arange(size.size), rng.poisson(rate * cal.n_days / 30.4375))
    n = acc.size
    created = cal.business_instants(np.zeros(n, np.int64), np.full(n, cal.n_days), rng.random(n),
                                    rng.integers(7 * 3600, 19 * 3600, n), np.full(n, -300))
    order = np.argsort(created, kind="stable")
    return acc[order], created[order]


def _cases_before(cases: tuple[np.ndarray, np.ndarray], account: np.ndarray, at_s: np.ndarray) -> np.ndarray:
    """Per (account, instant): the account's cases created in the window of days before the instant."""
    case_acc, case_s = cases
    span = np.int64(1) << 40  # wider than any epoch second of the period
    keys = np.sort(case_acc.astype(np.int64) * span + case_s)
    hi = account.astype(np.int64) * span + at_s
    counts: np.ndarray = (np.searchsorted(keys, hi, side="left")
                          - np.searchsorted(keys, hi - _CS_CASE_WINDOW_DAYS * _DAY, side="left"))
    return counts.astype(np.int64)


def _renewal_drivers(cases: tuple[np.ndarray, np.ndarray], created_s: np.ndarray, account: np.ndarray,
                     opened_s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each renewal's case count, account age in years, and the drivers' shift of its log-odds of renewing."""
    n_cases = _cases_before(cases, account, opened_s)
    age = (opened_s - created_s[account]) / (365.25 * _DAY)
    shift = (_CS_RENEWAL_CASES * (n_cases - _CS_RENEWAL_CASES_CENTRE)
             + _CS_RENEWAL_AGE * (age - _CS_RENEWAL_AGE_CENTRE))
    return n_cases, age, shift


def _churn_model_truth() -> dict[str, float]:
    """The churn drivers' parameters, for truth.json's model."""
    return {
        "cases_per_month": _CS_CASES_PER_MONTH, "cases_size_log_rate": _CS_CASES_SIZE,
        "cases_engagement_log_rate": _CS_CASES_ENGAGEMENT, "case_window_days": _CS_CASE_WINDOW_DAYS,
        "renewal_win_logit_per_case": _CS_RENEWAL_CASES, "renewal_cases_centre": _CS_RENEWAL_CASES_CENTRE,
        "renewal_win_logit_per_year_of_age": _CS_RENEWAL_AGE, "renewal_age_centre_years": _CS_RENEWAL_AGE_CENTRE,
    }
