"""Regional markets that move apart, and enrolment that follows the region: the covariate worlds; effects by region.

Scenarios ``covariate_trends``, ``poor_overlap`` and ``covariate_null`` (:class:`_Markets`). Each
rep's region is an observable attribute (``UserRoleId`` and ``Region__c`` in ``crm/User.csv``). The
growth regions' untreated log-odds of winning rise by ``growth_trend`` a year from the period's
start and the others' by ``other_trend``, on top of the model's common trend; an eligible rep
enrols with their region's probability (``enrol_growth`` or ``enrol_other``), at random within the
region.

Scenario ``heterogeneous`` uses the same attribute otherwise: its markets move together, but the
program's effect differs by region (:func:`_subgroup_truth` records each region's effect on its
trained and its never-trained reps).

Why it breaks difference-in-differences without covariates: trained reps come mostly from
the growth regions, so the trained group's untreated win rate rises faster than the comparison's,
and the difference of differences adds that divergence to the effect. Given the region, who is
trained is random, so trained and untrained reps of one region share their untreated path in
expectation: trends are parallel within a region, exactly (on the rate scale too, since the two
have the same skill distribution). truth.json's ``covariate`` section names the attribute and
gives each region's parameters and counts; ``diagnostics`` adds the plain and the within-region
pre/post difference-in-differences of the observed win rates, to show the trap.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from training_roi.simulate.org import _REGIONS, _Org
from training_roi.simulate.scenarios import _Markets

_COVARIATE = "region"

_MARKETS_DEFINITIONS = {
    "covariate": (
        "the observable attribute that drives both enrolment and the untreated trend: name (the column of "
        "truth_reps.csv), the CRM export fields that carry it (User.csv UserRoleId, loaded as crm_user.role_id, "
        "one role per region for reps; and Region__c), and per region: role_id, whether its market grows, the "
        "extra untreated log-odds of winning per year from the period's start, the probability that an eligible "
        "rep enrols, and the reps, eligible reps and trained reps"
    ),
    "covariate.regions.<region>.trend_win_logit_per_year": (
        "added to every deal's untreated log-odds of winning × years from the period's start to its CreatedDate, "
        "on top of model.trend_win_logit_per_year"
    ),
    "diagnostics.did_pre_post_plain": (
        "observed win rates: (trained post − trained pre) − (untrained post − untrained pre), pre = created before "
        "rollout_start, post = created on or after rollout_end; not the truth: it carries the markets' divergence"
    ),
    "diagnostics.did_pre_post_within_covariate": (
        "the same difference-in-differences within each region, averaged with the trained reps' closed post-period "
        "deals of each region as weights (regions lacking trained or untrained deals in either period left out): "
        "parallel trends hold within a region"
    ),
}


def _growth_rep(org: _Org, m: _Markets) -> np.ndarray:
    """Per rep: whether their region's market grows."""
    growth = np.array([name in m.growth for name, _, _ in _REGIONS])
    return np.asarray(growth[org.region[: org.n_reps]], dtype=bool)


def _enrol_probability(org: _Org, m: _Markets) -> np.ndarray:
    """Per rep: the probability of enrolling if eligible, set by the region alone."""
    return np.where(_growth_rep(org, m), m.enrol_growth, m.enrol_other)


def _market_logit(org: _Org, m: _Markets, owner: np.ndarray, years: np.ndarray) -> np.ndarray:
    """Per deal: the region's market trend on the untreated log-odds, ``years`` after the period's start."""
    trend = np.where(_growth_rep(org, m), m.growth_trend, m.other_trend)
    return np.asarray(trend[owner] * years, dtype=np.float64)


def _did(won: np.ndarray, counted: np.ndarray, trained: np.ndarray, pre: np.ndarray,
         post: np.ndarray) -> float | None:
    """(trained post − trained pre) − (untrained post − untrained pre) of ``won`` over the ``counted`` deals."""
    rates = []
    for group in (trained, ~trained):
        for period in (post, pre):
            m = counted & group & period
            if not m.any():
                return None
            rates.append(float(won[m].mean()))
    return (rates[0] - rates[1]) - (rates[2] - rates[3])


def _markets_diagnostics(org: _Org, trained_rep: np.ndarray, roll: tuple[int, int], *, owner: np.ndarray,
                         created_day: np.ndarray, won: np.ndarray, counted: np.ndarray) -> dict[str, float | None]:
    """The plain and the within-region pre/post difference-in-differences of the observed win rates.

    Per deal: its ``owner``, ``created_day``, whether it was ``won`` as observed, and whether it
    is ``counted`` (closed, not deleted); ``trained_rep`` per rep; ``roll`` the roll-out's days
    ``[lo, hi)``: pre-period deals are created before ``lo``, post-period ones from ``hi`` on.
    """
    trained = trained_rep[owner]
    pre, post = created_day < roll[0], created_day >= roll[1]
    region = org.region[owner]
    parts, weights = [], []
    for r in range(len(_REGIONS)):
        here = counted & (region == r)
        d = _did(won, here, trained, pre, post)
        if d is not None:
            parts.append(d)
            weights.append(int((here & trained & post).sum()))
    within = float(np.average(parts, weights=weights)) if parts and sum(weights) else None
    return {"did_pre_post_plain": _did(won, counted, trained, pre, post),
            "did_pre_post_within_covariate": within}


def _markets_truth(org: _Org, m: _Markets, eligible: np.ndarray, trained: np.ndarray) -> dict[str, Any]:
    """truth.json's ``covariate`` section: the attribute, where the export carries it, each region's numbers.

    ``eligible`` and ``trained`` are per rep.
    """
    reps = org.n_reps
    region = org.region[:reps]
    role = org.users["UserRoleId"].head(reps)
    regions: dict[str, Any] = {}
    for r, (name, _, _) in enumerate(_REGIONS):
        here = region == r
        growth = name in m.growth
        regions[name] = {
            "role_id": str(role.filter(pl.Series(here))[0]) if here.any() else None,
            "growth": growth,
            "trend_win_logit_per_year": m.growth_trend if growth else m.other_trend,
            "enrol_probability": m.enrol_growth if growth else m.enrol_other,
            "reps": int(here.sum()),
            "eligible_reps": int((here & eligible).sum()),
            "trained_reps": int((here & trained).sum()),
        }
    return {
        "name": _COVARIATE,
        "kind": "categorical",
        "user_fields": ["UserRoleId", "Region__c"],
        "warehouse_column": "crm_user.role_id",
        "reps_file_column": _COVARIATE,
        "growth_regions": list(m.growth),
        "regions": regions,
    }


_SUBGROUP_DEFINITIONS = {
    "subgroups": (
        "scenario heterogeneous: the effect by region (the rep's UserRoleId, loaded as crm_user.role_id, one role "
        "per region), per region: role_id, win_logit (its structural effect), trained_reps and untrained_reps (reps "
        "with a closed deal counted below), att_win_rate (trained reps' closed, non-deleted deals created 1 to 180 "
        "days after training: mean of won1 − won0, the realised effect) and att_win_rate_expected (mean of p1 − p0 "
        "over the same deals), atu_win_rate and atu_win_rate_expected (the same over the never-trained reps' closed, "
        "non-deleted deals created from the roll-out's start to 180 days after its end: what training would have "
        "done for them)"
    ),
}


def _subgroup_truth(org: _Org, by_region: tuple[float, ...], trained: np.ndarray, roll: tuple[int, int], *,
                    owner: np.ndarray, created_day: np.ndarray, days_since: np.ndarray, counted: np.ndarray,
                    won0: np.ndarray, won1: np.ndarray, p0: np.ndarray, p1: np.ndarray) -> dict[str, Any]:
    """truth.json's ``subgroups`` section: each region's effect on its trained and its never-trained reps.

    ``trained`` is per rep; the deal arrays per opportunity, ``counted`` the closed, non-deleted ones.
    """
    reps = org.n_reps
    role = org.users["UserRoleId"].head(reps)
    region = org.region[owner]
    after = counted & trained[owner] & (days_since >= 1) & (days_since <= 180)
    untrained = counted & ~trained[owner] & (created_day >= roll[0]) & (created_day < roll[1] + 180)
    out: dict[str, Any] = {}
    for r, (name, _, _) in enumerate(_REGIONS):
        here = org.region[:reps] == r
        out[name] = {"role_id": str(role.filter(pl.Series(here))[0]) if here.any() else None,
                     "win_logit": by_region[r],
                     **_group_effects(after & (region == r), untrained & (region == r), owner=owner, won0=won0,
                                      won1=won1, p0=p0, p1=p1)}
    return {"variable": "role", "warehouse_column": "crm_user.role_id", "regions": out}


def _group_effects(trained_deals: np.ndarray, untrained_deals: np.ndarray, *, owner: np.ndarray, won0: np.ndarray,
                   won1: np.ndarray, p0: np.ndarray, p1: np.ndarray) -> dict[str, Any]:
    """A subgroup's reps and its effect on its trained and never-trained reps' deals, realised and expected."""
    def mean(values: np.ndarray, mask: np.ndarray) -> float | None:
        return float(values[mask].mean()) if mask.any() else None

    t, u = trained_deals, untrained_deals
    return {
        "trained_reps": int(np.unique(owner[t]).size),
        "untrained_reps": int(np.unique(owner[u]).size),
        "att_win_rate": mean(won1.astype(np.float64) - won0, t),
        "att_win_rate_expected": mean(p1 - p0, t),
        "atu_win_rate": mean(won1.astype(np.float64) - won0, u),
        "atu_win_rate_expected": mean(p1 - p0, u),
    }

