"""Scenario ``customer``'s CRM: the customer accounts, their contacts, and their renewals and upsells.

The org's account managers (the CRM users who are reps in the sales scenarios) own a book of
customer accounts, each with a headcount, an engagement with the product, a contract value and a
contract anniversary. A renewal opens ahead of each anniversary; upsells arrive at a rate that
grows with the account's size and engagement. truth.json records the structural parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from training_roi.simulate.customer_churn import _renewal_drivers
from training_roi.simulate.draws import _pick, _stream
from training_roi.simulate.fields import _id_counters, _salesforce_ids, _sf_datetime
from training_roi.simulate.opportunities import (
    _AMOUNT_TREND_PER_YEAR,
    _CYCLE_SIGMA,
    _SEASON,
    _TREND_WIN_LOGIT_PER_YEAR,
    _TYPES,
    _observe,
    _Opps,
)
from training_roi.simulate.org import (
    _CONTACT_TITLES,
    _REP_TITLES,
    _account_columns,
    _company_names,
    _Org,
    _people,
    _unique_emails,
)
from training_roi.simulate.period import _DAY, _NEVER, _Calendar
from training_roi.simulate.scenarios import _CustomerScenario

_AM_TITLES = dict(zip(_REP_TITLES, ("Account Manager", "Senior Account Manager", "Enterprise Account Manager",
                                    "Account Manager, Mid-Market"), strict=True))

# Structural parameters of the customer model (recorded in truth.json).
_RENEWAL, _UPSELL = _TYPES.index("Renewal"), _TYPES.index("Upsell")
_CS_ACCOUNTS_PER_MANAGER = 5.0  # accounts per account manager: 1 + Poisson(this)
_CS_EMPLOYEES_MEDIAN = 400.0
_CS_EMPLOYEES_SIGMA = 1.2  # log-sd of headcount; "size" is log headcount standardised by these two
_CS_CONTACTS_LOG_RATE = 0.6  # contacts: 1 + Poisson(exp(0.6 + 0.35·size)), at most 6
_CS_CONTACTS_SIZE = 0.35
_CS_MAX_CONTACTS = 6
_CS_ARR_MEDIAN = 18_000.0  # annual contract value of a median account
_CS_ARR_HEADCOUNT = 0.6  # elasticity of contract value with headcount
_CS_ARR_SIGMA = 0.35
_CS_RENEWAL_LEAD_DAYS = (60, 120)  # a renewal opens this many days before the contract anniversary
_CS_RENEWAL_CLOSE_SD = 8.0  # days around the anniversary a renewal closes
_CS_UPSELLS_PER_YEAR = 0.6  # upsell opportunities per median account and year
_CS_UPSELL_SIZE = 0.4  # log-rate of upsell opportunities per unit of size
_CS_UPSELL_ENGAGEMENT = 0.3  # … and per unit of engagement
_CS_UPSELL_AMOUNT_SHARE = 0.3  # median upsell amount as a share of the contract value
_CS_UPSELL_AMOUNT_SIGMA = 0.5
_CS_UPSELL_CYCLE_MEDIAN = 40.0
# Log-odds of winning, per type: (intercept, per unit of engagement, per unit of size).
_CS_WIN_LOGIT = {_RENEWAL: (1.3, 0.6, 0.15), _UPSELL: (-0.5, 0.5, 0.2)}
_CS_OUTSIDERS = 0.04  # academy learners at customer domains who are no CRM contact, per contact


@dataclass
class _Customers:
    """The customer accounts' latent traits, and everyone at them who could use the academy.

    People are the accounts' contacts (indices ``0 … n_contacts − 1``, in Contact.csv order), then
    outsiders: colleagues at the same companies whom the CRM does not know.
    """

    employees: np.ndarray  # per account
    size: np.ndarray  # per account: standardised log headcount
    engagement: np.ndarray  # per account: latent engagement with the product ~ N(0, 1)
    arr: np.ndarray  # per account: annual contract value at the start of the period
    anniversary: np.ndarray  # per account: day index (0–364) of its first contract anniversary
    created_s: np.ndarray  # per account: UTC epoch seconds of its CreatedDate
    n_contacts: int
    person_account: np.ndarray  # per person: account index
    email: pl.Series  # per person: lower case, unique
    name: pl.Series
    title: pl.Series


def _build_customers(cal: _Calendar, org: _Org, seed: int) -> tuple[_Org, _Customers]:
    """Give the org's reps, as account managers, a book of customer accounts with contacts.

    The CRM users are the org's own (the same people as in the sales scenarios of the seed), the
    reps retitled; accounts and contacts are drawn anew, with the traits the customer model uses.
    """
    rng = _stream(seed, "customer-accounts")
    reps = org.n_reps
    per_rep = 1 + rng.poisson(_CS_ACCOUNTS_PER_MANAGER, reps)
    acc_start = np.concatenate([[0], np.cumsum(per_rep)[:-1]])
    n_acc = int(per_rep.sum())
    acc_owner = np.repeat(np.arange(reps), per_rep)
    acc_created = cal.start_s - rng.integers(60 * _DAY, 6 * 365 * _DAY, n_acc)
    acc_name, acc_domain, core = _company_names(rng, n_acc)
    log_emp = rng.normal(math.log(_CS_EMPLOYEES_MEDIAN), _CS_EMPLOYEES_SIGMA, n_acc)
    size = (log_emp - math.log(_CS_EMPLOYEES_MEDIAN)) / _CS_EMPLOYEES_SIGMA
    employees = np.exp(log_emp).astype(np.int64) + 5
    engagement = rng.standard_normal(n_acc)
    arr = np.round(_CS_ARR_MEDIAN * np.exp(_CS_ARR_HEADCOUNT * _CS_EMPLOYEES_SIGMA * size
                                           + _CS_ARR_SIGMA * rng.standard_normal(n_acc)), -2)
    anniversary = rng.integers(0, 365, n_acc)
    health = np.clip(np.round(60 + 12 * engagement + 8 * rng.standard_normal(n_acc)), 0, 100).astype(np.int64)
    revenue = np.round(employees * np.exp(rng.normal(math.log(180_000), 0.5, n_acc)), -3)
    state_pick = rng.random(n_acc)
    account_id = _salesforce_ids("001", _id_counters(rng, n_acc, acc_created))
    accounts = pl.DataFrame({
        "Id": account_id,
        "IsDeleted": np.zeros(n_acc, bool),
        "Name": acc_name,
        "Type": _pick(rng, ("Customer - Direct", "Customer - Channel"), n_acc, (0.8, 0.2)),
        # Accounts are in their manager's country, as in the sales scenarios.
        **_account_columns(core=core, revenue=revenue, employees=employees, owner_id=org.user_id.gather(acc_owner),
                           region=org.region[acc_owner], country=org.country[acc_owner], u_state=state_pick,
                           created_s=acc_created),
        "ARR__c": arr,
        "Health_Score__c": health,
    })

    # Contacts (1–6, more at bigger accounts), then outsiders at the same companies.
    con_count = np.minimum(_CS_MAX_CONTACTS,
                           1 + rng.poisson(np.exp(_CS_CONTACTS_LOG_RATE + _CS_CONTACTS_SIZE * size)))
    con_start = np.concatenate([[0], np.cumsum(con_count)[:-1]])
    n_con = int(con_count.sum())
    con_acc = np.repeat(np.arange(n_acc), con_count)
    n_out = max(2, round(_CS_OUTSIDERS * n_con))
    person_account = np.concatenate([con_acc, np.sort(rng.integers(0, n_acc, n_out))])
    first, last, local = _people(rng, n_con + n_out)
    email = _unique_emails(local, acc_domain.gather(person_account))
    title = _pick(rng, _CONTACT_TITLES, n_con + n_out)
    con_created = acc_created[con_acc] + (rng.random(n_con) * (cal.start_s - acc_created[con_acc])).astype(np.int64)
    contact_id = _salesforce_ids("003", _id_counters(rng, n_con, con_created))
    contacts = pl.DataFrame({
        "Id": contact_id,
        "IsDeleted": np.zeros(n_con, bool),
        "AccountId": account_id.gather(con_acc),
        "FirstName": first.head(n_con),
        "LastName": last.head(n_con),
        "Email": email.head(n_con),
        "Title": title.head(n_con),
        "CreatedDate": _sf_datetime(con_created),
        "Buying_Role__c": _pick(rng, ("Decision Maker", "Economic Buyer", "Champion", "Influencer", "User"), n_con),
    })
    org = replace(
        org, users=org.users.with_columns(pl.col("Title").replace(_AM_TITLES)), acc_start=acc_start,
        acc_selling=per_rep, acc_owner=acc_owner, account_id=account_id, account_name=acc_name,
        account_domain=acc_domain, account_deleted=np.zeros(n_acc, bool), accounts=accounts,
        con_start=con_start, con_count=con_count, contact_id=contact_id, contacts=contacts,
    )
    customers = _Customers(
        employees=employees, size=size, engagement=engagement, arr=arr, anniversary=anniversary, created_s=acc_created,
        n_contacts=n_con, person_account=person_account, email=email,
        name=pl.select(pl.concat_str([first, pl.lit(" "), last])).to_series(), title=title,
    )
    return org, customers


@dataclass
class _RenewalDrivers:
    """Per opportunity (in the order of :class:`_Opps`): the churn drivers of renewals, 0 for upsells."""

    cases: np.ndarray  # the account's support cases in the window before the renewal opened
    age_years: np.ndarray  # the account's age when the renewal opened


def _simulate_renewals(cal: _Calendar, org: _Org, cu: _Customers, train_day: np.ndarray, sc: _CustomerScenario,
                       seed: int, cases: tuple[np.ndarray, np.ndarray]) -> tuple[_Opps, _RenewalDrivers]:
    """Draw every account's renewals and upsells and both potential outcomes; observe one of them.

    A renewal opens ahead of each contract anniversary and closes around it; upsells arrive at a
    rate that grows with the account's size and engagement and that training does not change.
    A renewal's log-odds of winning also move with the account's support ``cases`` before it
    opened and its age (:mod:`training_roi.simulate.customer_churn`).
    Training shifts the log-odds of winning, per type, from the day after the account's training
    (``train_day``, per account: its UTC day index, ``_NEVER`` if none).
    """
    rng = _stream(seed, "customer-opportunities")
    n_acc = cu.engagement.size
    k = cal.n_days // 365 + 2
    due_all = cu.anniversary[:, None] + 365 * np.arange(k)[None, :]
    lead = rng.integers(_CS_RENEWAL_LEAD_DAYS[0], _CS_RENEWAL_LEAD_DAYS[1] + 1, (n_acc, k))
    opens = due_all - lead
    valid = (opens >= 0) & (opens < cal.n_days)
    r_acc = np.broadcast_to(np.arange(n_acc)[:, None], (n_acc, k))[valid]
    rate = _CS_UPSELLS_PER_YEAR * np.exp(_CS_UPSELL_SIZE * cu.size + _CS_UPSELL_ENGAGEMENT * cu.engagement
                                         - (_CS_UPSELL_SIZE**2 + _CS_UPSELL_ENGAGEMENT**2) / 2)
    u_acc = np.repeat(np.arange(n_acc), rng.poisson(rate * cal.n_days / 365.25))
    account = np.concatenate([r_acc, u_acc])
    typ = np.concatenate([np.full(r_acc.size, _RENEWAL), np.full(u_acc.size, _UPSELL)])
    due = np.concatenate([due_all[valid], np.full(u_acc.size, -1)])
    lo = np.concatenate([opens[valid], rng.integers(0, cal.n_days, u_acc.size)])
    n = account.size
    created = cal.business_instants(lo, np.minimum(lo + 5, cal.n_days), rng.random(n),
                                    rng.integers(8 * 3600, 18 * 3600, n), org.offset_min[org.acc_owner[account]])
    order = np.argsort(created, kind="stable")
    account, typ, due, created = account[order], typ[order], due[order], created[order]
    owner = org.acc_owner[account]
    day = created // _DAY - cal.start_day
    years = day / 365.25
    renewal = typ == _RENEWAL

    u_win = rng.random(n)
    z_amount = rng.standard_normal(n)
    z_cycle = rng.standard_normal(n)
    deleted = rng.random(n) < 0.004
    u_missing = rng.random(n)
    u_stage = rng.random(n)

    coef = np.array([_CS_WIN_LOGIT.get(t, (0.0, 0.0, 0.0)) for t in range(len(_TYPES))])[typ]
    eta0 = (coef[:, 0] + coef[:, 1] * cu.engagement[account] + coef[:, 2] * cu.size[account]
            + _TREND_WIN_LOGIT_PER_YEAR * years + np.array(_SEASON)[cal.month_of_year[day]])
    n_cases, age, shift = _renewal_drivers(cases, cu.created_s, account, created)
    eta0 = eta0 + np.where(renewal, shift, 0.0)
    drivers = _RenewalDrivers(cases=np.where(renewal, n_cases, 0), age_years=np.where(renewal, age, 0.0))
    eta1 = eta0 + np.where(renewal, sc.renewal_logit, sc.upsell_logit)
    arr = cu.arr[account] * np.exp(_AMOUNT_TREND_PER_YEAR * years)
    amount0 = np.where(renewal, np.round(arr * np.exp(0.05 * z_amount), -1),
                       np.round(_CS_UPSELL_AMOUNT_SHARE * arr * np.exp(_CS_UPSELL_AMOUNT_SIGMA * z_amount), -1))
    amount0 = np.maximum(amount0, 500.0)
    cycle0 = np.where(renewal, due - day + np.round(_CS_RENEWAL_CLOSE_SD * z_cycle),
                      np.round(_CS_UPSELL_CYCLE_MEDIAN * np.exp(_CYCLE_SIGMA * z_cycle)))
    cycle0 = np.maximum(3, cycle0).astype(np.int64)

    train = train_day[account]
    days_since = day - train
    exposed = (train < _NEVER) & (days_since >= 1)
    opps = _observe(cal, rng, owner=owner, account=account, created_s=created, created_day=day, typ=typ,
                    lead_source=np.full(n, -1, np.int64), u_win=u_win, eta0=eta0, eta1=eta1, amount0=amount0,
                    amount1=amount0.copy(), cycle0=cycle0, cycle1=cycle0.copy(), exposed=exposed,
                    days_since=days_since, deleted=deleted, u_missing=u_missing, u_stage=u_stage,
                    lessons_before=np.zeros(0, np.int64))
    return opps, drivers
