"""The Salesforce exports built from the pipeline: Opportunity, OpportunityHistory, Lead, Task and Case.

User, Account and Contact come with the organisation (:mod:`training_roi.simulate.org`). The CRM
go-live changes the leads and their first responses through :class:`_LeadOutcomes` and
:class:`_Responses`, without this module knowing about the go-live.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import polars as pl

from training_roi.simulate.draws import _pick, _stream
from training_roi.simulate.fields import _dates, _id_counters, _masked, _salesforce_ids, _sf_datetime
from training_roi.simulate.opportunities import _LEAD_SOURCES, _OPEN_STAGES, _OPPS_PER_REP_MONTH, _TYPES, _Opps
from training_roi.simulate.org import _company_names, _Org, _people, _region_names
from training_roi.simulate.period import _DAY, _Calendar

_LEAD_CONVERSION = 0.2  # share of leads converted into an opportunity

_PHRASES = {
    0: ("New Logo", "Platform Purchase", "Pilot, Phase 1", "Enterprise Agreement", "50 Seats",
        "250 Seats", "Starter Package", "Services Engagement"),
    1: ("Annual Renewal", "Renewal, 3-Year", "Support Renewal", "Subscription Renewal"),
    2: ("Upsell - Analytics Add-on", "Seat Expansion", "Premium Support Upgrade", "Add-on: API Access"),
}


def _opportunity_frame(cal: _Calendar, org: _Org, o: _Opps, seed: int) -> pl.DataFrame:
    """Build Opportunity.csv: observed outcomes only, as the CRM shows them."""
    rng = _stream(seed, "opportunity-file")
    phrases = [p for t in range(len(_TYPES)) for p in _PHRASES[t]]
    sizes = np.array([len(_PHRASES[t]) for t in range(len(_TYPES))])
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    phrase = first[o.type] + np.floor(rng.random(o.n) * sizes[o.type]).astype(np.int64)
    stage_names = pl.Series([s for s, _ in _OPEN_STAGES])
    stage_prob = np.array([p for _, p in _OPEN_STAGES])
    stage = pl.select(
        pl.when(pl.Series(o.closed & o.won)).then(pl.lit("Closed Won"))
        .when(pl.Series(o.closed)).then(pl.lit("Closed Lost"))
        .otherwise(stage_names.gather(np.maximum(o.stage, 0)))
    ).to_series()
    prob = np.where(o.closed, np.where(o.won, 100, 0), stage_prob[np.maximum(o.stage, 0)])
    return pl.DataFrame({
        "Id": o.opp_id,
        "IsDeleted": o.deleted,
        "AccountId": org.account_id.gather(o.account),
        "OwnerId": org.user_id.gather(o.owner),
        "Name": pl.select(pl.concat_str([org.account_name.gather(o.account), pl.lit(" - "),
                                         pl.Series(phrases).gather(phrase)])).to_series(),
        "Type": pl.Series(_TYPES).gather(o.type),
        "StageName": stage,
        "Amount": pl.Series(np.where(o.amount_missing, np.nan, o.amount)).fill_nan(None),
        "Probability": prob.astype(np.int64),
        "CloseDate": _dates(cal.start_day + o.close_day),
        "LeadSource": _masked(pl.Series(_LEAD_SOURCES).gather(np.maximum(o.lead_source, 0)), o.lead_source >= 0),
        "IsClosed": o.closed,
        "IsWon": o.won,
        "CreatedDate": _sf_datetime(o.created_s),
        "Region__c": _region_names(org, o.owner),
    })


def _history_frame(cal: _Calendar, org: _Org, o: _Opps, seed: int) -> pl.DataFrame:
    """Build OpportunityHistory.csv: the stage at creation, and the stage entered since."""
    rng = _stream(seed, "opportunity-history")
    n = o.n
    guess = o.created_day + np.maximum(7, np.round(o.cycle * rng.uniform(0.6, 1.3, n))).astype(np.int64)
    close_s = cal.business_instants(o.close_day, o.close_day + 1, np.zeros(n), rng.integers(9 * 3600, 18 * 3600, n),
                                    org.offset_min[o.owner])
    close_s = np.maximum(close_s, o.created_s + 60)
    moved = ~o.closed & (o.stage > 0)
    moved_s = o.created_s + (rng.uniform(0.3, 0.95, n) * (cal.end_s - o.created_s)).astype(np.int64)
    idx = np.concatenate([np.arange(n), np.flatnonzero(o.closed), np.flatnonzero(moved)])
    part = np.concatenate([np.zeros(n, np.int8), np.ones(int(o.closed.sum()), np.int8),
                           np.full(int(moved.sum()), 2, np.int8)])
    ts = np.where(part == 0, o.created_s[idx], np.where(part == 1, close_s[idx], moved_s[idx]))
    order = np.lexsort((part, ts))
    idx, part, ts = idx[order], part[order], ts[order]
    names = [s for s, _ in _OPEN_STAGES] + ["Closed Won", "Closed Lost"]
    probs = np.array([p for _, p in _OPEN_STAGES] + [100, 0])
    forecast = ["Pipeline", "Pipeline", "Pipeline", "Pipeline", "Best Case", "Commit", "Closed", "Omitted"]
    closed_code = np.where(o.won, len(_OPEN_STAGES), len(_OPEN_STAGES) + 1)
    code = np.where(part == 0, 0, np.where(part == 1, closed_code[idx], o.stage[idx]))
    amount = np.where(o.amount_missing[idx], np.nan, o.amount[idx])
    return pl.DataFrame({
        "Id": _salesforce_ids("008", _id_counters(rng, idx.size)),
        "OpportunityId": o.opp_id.gather(idx),
        "CreatedById": org.user_id.gather(o.owner[idx]),
        "CreatedDate": _sf_datetime(ts),
        "StageName": pl.Series(names).gather(code),
        "Amount": pl.Series(amount).fill_nan(None),
        "ExpectedRevenue": pl.Series(amount * probs[code] / 100.0).fill_nan(None),
        "CloseDate": _dates(cal.start_day + np.where(part == 0, guess[idx], o.close_day[idx])),
        "Probability": probs[code],
        "ForecastCategory": pl.Series(forecast).gather(code),
        "IsDeleted": o.deleted[idx],
        "Region__c": _region_names(org, o.owner[idx]),
    })


class _LeadOutcomes(Protocol):
    """Potential outcomes of leads that :func:`_lead_frame` asks for (the CRM go-live's ``_GoLive``)."""

    def leads(self, cal: _Calendar, org: _Org, owner: np.ndarray, created: np.ndarray, status: np.ndarray,
              conv_day: np.ndarray, conv_acc: np.ndarray, seed: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Return the leads' observed status, conversion day and account, and their truth columns."""
        ...


def _lead_frame(cal: _Calendar, org: _Org, o: _Opps, seed: int, *,
                golive: _LeadOutcomes | None = None) -> pl.DataFrame:
    """Build Lead.csv: about one lead per rep and month, a fifth converted into opportunities.

    With ``golive`` (scenario crm_golive) conversions and first responses are potential outcomes
    (:meth:`_LeadOutcomes.leads`), and the frame also holds their truth in columns named ``_…``.
    """
    rng = _stream(seed, "leads")
    reps = org.n_reps
    lo, hi = org.rep_days(cal.n_days)
    exposure = np.maximum(hi - lo, 0).astype(float)
    total = int(rng.poisson(exposure.sum() / 30.4375))
    cand = np.flatnonzero(~o.deleted & (o.created_day >= 30))
    conv = np.sort(rng.choice(cand, size=min(round(_LEAD_CONVERSION * total), cand.size), replace=False))
    n_open = max(0, total - conv.size)
    owner_open = rng.choice(reps, size=n_open, p=exposure / exposure.sum())
    created_open = cal.business_instants(lo[owner_open], hi[owner_open], rng.random(n_open),
                                         rng.integers(8 * 3600, 18 * 3600, n_open), org.offset_min[owner_open])
    created_conv = np.maximum(o.created_s[conv] - rng.integers(_DAY, 30 * _DAY, conv.size), cal.start_s)
    n = n_open + conv.size
    is_conv = np.concatenate([np.zeros(n_open, bool), np.ones(conv.size, bool)])
    owner = np.concatenate([owner_open, o.owner[conv]])
    created = np.concatenate([created_open, created_conv])
    age_days = (cal.end_s - created) // _DAY
    u = rng.random(n)
    status = np.where(is_conv, 0, np.where(age_days < 30, np.where(u < 0.5, 1, 2), np.where(u < 0.85, 3, 2)))
    statuses = ("Closed - Converted", "Open - Not Contacted", "Working - Contacted", "Closed - Not Converted")
    src_open = np.where(rng.random(n_open) < 0.05, -1, rng.integers(0, len(_LEAD_SOURCES), n_open))
    source = np.concatenate([src_open, o.lead_source[conv]])
    first, last, local = _people(rng, n)
    company, domain, _ = _company_names(rng, n)
    opp = np.concatenate([np.full(n_open, -1), conv])  # the opportunity a lead became, -1: none
    conv_day, conv_acc = o.created_day[opp], o.account[opp]  # read only where converted
    truth: dict[str, np.ndarray] = {}
    if golive is not None:
        status, conv_day, conv_acc, truth = golive.leads(cal, org, owner, created, status, conv_day, conv_acc, seed)
    converted = status == 0
    return pl.DataFrame({
        "Id": _salesforce_ids("00Q", _id_counters(rng, n, created)),
        "IsDeleted": rng.random(n) < 0.005,
        "FirstName": first,
        "LastName": last,
        "Company": company,
        "Email": pl.select(pl.concat_str([local, pl.lit("@"), domain])).to_series(),
        "Status": pl.Series(statuses).gather(status),
        "LeadSource": _masked(pl.Series(_LEAD_SOURCES).gather(np.maximum(source, 0)), source >= 0),
        "OwnerId": org.user_id.gather(owner),
        "CreatedDate": _sf_datetime(created),
        "IsConverted": converted,
        "ConvertedDate": _masked(_dates(cal.start_day + conv_day), converted),
        "ConvertedAccountId": _masked(org.account_id.gather(conv_acc), converted),
        "ConvertedContactId": _masked(org.contact_id.gather(org.con_start[conv_acc]), converted),
        "ConvertedOpportunityId": _masked(o.opp_id.gather(np.maximum(opp, 0)), opp >= 0),
        "Lead_Score__c": rng.integers(0, 101, n),
        **truth,
    }).sort("CreatedDate", maintain_order=True)


@dataclass(frozen=True)
class _Responses:
    """First responses to leads, as the tasks that record them."""

    owner: np.ndarray  # user index: the lead's owner
    lead_id: pl.Series  # the task's WhoId
    at_s: np.ndarray  # its CreatedDate, UTC epoch seconds
    deleted: np.ndarray  # its lead is deleted, and the task with it

    @classmethod
    def of(cls, cal: _Calendar, leads: pl.DataFrame) -> _Responses:
        """The responses within the period to the leads of :func:`_lead_frame` (with its truth columns)."""
        r = leads.filter(pl.col("_respond_s") < cal.end_s)
        return cls(owner=r["_owner"].to_numpy(), lead_id=r["Id"], at_s=r["_respond_s"].to_numpy(),
                   deleted=r["IsDeleted"].to_numpy())


def _task_frame(cal: _Calendar, org: _Org, o: _Opps, seed: int, *,
                responses: _Responses | None = None) -> pl.DataFrame:
    """Build Task.csv: a couple of calls, emails and to-dos per rep and month, on their deals.

    With ``responses`` (scenario crm_golive) the first response to each lead follows them: a call
    or an email on the lead (``WhoId``), created at the response, like the others in every other way.
    """
    rng = _stream(seed, "tasks")
    m = int(np.rint(2.0 * o.n / _OPPS_PER_REP_MONTH))  # tasks on deals
    opp = np.sort(rng.integers(0, o.n, m))
    limit = np.where(o.closed[opp], (cal.start_day + o.close_day[opp]) * _DAY, cal.end_s - 1)
    created = o.created_s[opp] + (rng.random(m) * np.maximum(limit - o.created_s[opp], 0)).astype(np.int64)
    owner, deleted = o.owner[opp], o.deleted[opp]
    if responses is not None:
        created = np.concatenate([created, responses.at_s])
        owner, deleted = np.concatenate([owner, responses.owner]), np.concatenate([deleted, responses.deleted])
    n = created.size
    activity_day = created // _DAY + rng.integers(0, 6, n)
    end_day = cal.start_day + cal.n_days
    done = (activity_day < end_day - 2) & (rng.random(n) < 0.92)
    completed_s = np.clip(activity_day * _DAY + rng.integers(13 * 3600, 23 * 3600, n), created + 60, cal.end_s - 1)
    subtype = rng.choice(3, size=n, p=(0.45, 0.40, 0.15))
    subtype[m:] = np.minimum(subtype[m:], 1)  # a lead is answered by a call or an email, not a to-do
    subjects = (("Call", "Discovery call", "Follow-up call"),
                ("Email: Proposal sent", "Email: Follow up", "Email: Pricing, next steps"),
                ("Send contract", "Prepare demo", "Update mutual action plan"))
    subject = subtype * 3 + rng.integers(0, 3, n)
    acc = o.account[opp]
    who = org.con_start[acc] + np.floor(rng.random(m) * org.con_count[acc]).astype(np.int64)
    on_opp = rng.random(m) < 0.75
    what = pl.select(pl.when(pl.Series(on_opp)).then(o.opp_id.gather(opp))
                     .otherwise(org.account_id.gather(acc))).to_series()
    who_id, account_id = org.contact_id.gather(who), org.account_id.gather(acc)
    if responses is not None:
        none = pl.repeat(None, n - m, dtype=pl.String, eager=True)
        who_id, what, account_id = (pl.concat([who_id, responses.lead_id]), pl.concat([what, none]),
                                    pl.concat([account_id, none]))
    not_done = np.where(rng.random(n) < 0.6, "Not Started", "In Progress")
    return pl.DataFrame({
        "Id": _salesforce_ids("00T", _id_counters(rng, n, created)),
        "IsDeleted": deleted | ((rng.random(n) < 0.003) & (np.arange(n) < m)),  # a response goes with its lead
        "OwnerId": org.user_id.gather(owner),
        "WhoId": who_id,
        "WhatId": what,
        "AccountId": account_id,
        "Subject": pl.Series([s for group in subjects for s in group]).gather(subject),
        "TaskSubtype": pl.Series(("Call", "Email", "Task")).gather(subtype),
        "ActivityDate": _dates(activity_day),
        "Status": pl.Series(np.where(done, "Completed", not_done)),
        "Priority": _pick(rng, ("Normal", "High"), n, (0.85, 0.15)),
        "IsClosed": done,
        "CreatedDate": _sf_datetime(created),
        "CompletedDateTime": _masked(_sf_datetime(completed_s), done),
        "Call_Result__c": _masked(_pick(rng, ("Connected", "Left Voicemail", "No Answer"), n), subtype == 0),
    })


def _case_frame(cal: _Calendar, org: _Org, seed: int,
                cases: tuple[np.ndarray, np.ndarray] | None = None) -> pl.DataFrame:
    """Build Case.csv: support cases of customer accounts with a CSAT__c score once closed.

    ``cases`` (account index, UTC epoch seconds created, in time order) are cases drawn by a
    scenario whose outcomes depend on them (the customer scenario's churn); without them cases
    fall on the reps' accounts at random, at a quarter of a case per rep and month.
    """
    rng = _stream(seed, "cases")
    if cases is None:
        reps = org.n_reps
        n = int(rng.poisson(0.25 * reps * cal.n_days / 30.4375))
        rep = rng.integers(0, reps, n)
        acc = org.acc_start[rep] + np.floor(rng.random(n) * org.acc_selling[rep]).astype(np.int64)
    else:
        acc, given = cases
        n = acc.size
    contact = org.con_start[acc] + np.floor(rng.random(n) * org.con_count[acc]).astype(np.int64)
    support = np.flatnonzero(org.kind == 3)
    owner = support[rng.integers(0, support.size, n)]
    if cases is None:
        created = np.sort(cal.business_instants(np.zeros(n), np.full(n, cal.n_days), rng.random(n),
                                                rng.integers(7 * 3600, 19 * 3600, n), np.full(n, -300)))
    else:
        created = given
    closed_s = created + 3600 + rng.exponential(72 * 3600, n).astype(np.int64)
    is_closed = (closed_s < cal.end_s) & (rng.random(n) >= 0.03)
    open_status = _pick(rng, ("New", "Working", "Escalated"), n, (0.3, 0.5, 0.2))
    csat = rng.choice(np.arange(1, 6), size=n, p=(0.05, 0.07, 0.15, 0.35, 0.38))
    return pl.DataFrame({
        "Id": _salesforce_ids("500", _id_counters(rng, n)),
        "IsDeleted": rng.random(n) < 0.002,
        "CaseNumber": pl.Series([f"{i:08d}" for i in range(1001, 1001 + n)], dtype=pl.String),
        "AccountId": org.account_id.gather(acc),
        "ContactId": org.contact_id.gather(contact),
        "OwnerId": org.user_id.gather(owner),
        "Subject": _pick(rng, ("Cannot log in", "Invoice question", "Feature request: export, CSV",
                               'Error "500" on dashboard', "Integration not syncing", "Onboarding help"), n),
        "Status": pl.select(pl.when(pl.Series(is_closed)).then(pl.lit("Closed")).otherwise(open_status)).to_series(),
        "Priority": _pick(rng, ("Low", "Medium", "High"), n, (0.3, 0.5, 0.2)),
        "Origin": _pick(rng, ("Phone", "Email", "Web", "Chat"), n, (0.25, 0.4, 0.25, 0.1)),
        "CreatedDate": _sf_datetime(created),
        "ClosedDate": _masked(_sf_datetime(np.minimum(closed_s, cal.end_s - 1)), is_closed),
        "IsClosed": is_closed,
        "CSAT__c": _masked(pl.Series(csat), is_closed),
    })
