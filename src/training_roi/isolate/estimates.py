"""Participant and manager estimates: Phillips' isolation by asking the people who were there.

When no comparison group exists and no trend can be projected, Phillips asks the participants
(or their managers) what share of the improvement they attribute to the program, and how
confident they are in that share. Each answer credits the program with
``observed change × share × confidence``: the confidence discounts the share for the answer's
own error, so the credit is a conservative lower figure rather than the respondent's best guess.
Following Phillips' conservative rules, a question left unanswered (or answered outside 0–100)
credits nothing.

It is a fallback, not a causal estimate: people cannot see the counterfactual any better than
an analyst can, and participants over-claim. So the result is labelled an opinion, and its
interval is what a self-report can and cannot know — from none of the observed change to all
of it — which always holds zero: nothing is credited on participant estimates alone. How much
the answers disagree (a bootstrap over respondents) is kept in the details, not passed off as
the effect's uncertainty.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl

from training_roi.isolate.effect import (
    Effect,
    EstimatorSettings,
    NotApplicable,
    cluster_weights,
    estimator,
)
from training_roi.measure.frames import TableLike, as_polars
from training_roi.measure.panels import UnitPanel

__all__ = ["ROLES", "estimate_participant"]

ROLES = ("learner", "manager")
"""Who answers an estimate question: the participant, or the participant's manager."""
_FEW_RESPONDENTS = 10
_METHOD = {None: "participant and manager estimates", "learner": "participant estimate",
           "manager": "manager estimate"}


def estimate_participant(
    observed_change: float,
    responses: TableLike,
    *,
    baseline: float,
    role: str | None = None,
    confidence: float = 0.95,
    replicates: int = 2000,
    seed: int = 7,
) -> Effect:
    """The share of ``observed_change`` the respondents credit to the program, discounted by their confidence.

    Parameters
    ----------
    observed_change
        The trained group's change in the outcome (after − before), in the outcome's units.
    responses
        Estimate answers (a Polars or pandas DataFrame, or an Arrow table), one row per answer,
        with ``role``, ``score`` (% of the improvement
        due to the program, 0–100) and ``confidence`` (0–100), as :func:`training_roi.measure.survey_estimates`
        returns them. Rows of another ``level``, when the column is there, are ignored.
    baseline
        The trained group's pre-period level of the outcome (for the relative effect).
    role
        ``learner`` or ``manager`` to use only their answers; None uses both.
    confidence
        Level of the interval.
    replicates, seed
        The bootstrap over respondents.

    Returns
    -------
    Effect
        ``estimate`` is the mean credit ``observed_change × score/100 × confidence/100`` over
        the answers, a missing or out-of-range answer counting as 0.

    Raises
    ------
    NotApplicable
        No estimate answer (of ``role``, when given).
    ValueError
        An unknown role, responses without the needed columns, or a non-finite change.

    Examples
    --------
    >>> answers = pl.DataFrame({"role": ["learner"], "score": [60.0], "confidence": [80.0]})
    >>> estimate_participant(10.0, answers, baseline=50.0, replicates=10).estimate
    4.8
    """
    if role is not None and role not in ROLES:
        raise ValueError(f"role {role!r}: expected one of {', '.join(ROLES)}, or None for both")
    if not np.isfinite(observed_change):
        raise ValueError(f"observed_change is {observed_change}: a finite change of the outcome is needed")
    frame = as_polars(responses, "responses")
    missing = [c for c in ("role", "score", "confidence") if c not in frame.columns]
    if missing:
        raise ValueError(f"the responses have no column {', '.join(missing)} (columns: {', '.join(frame.columns)})")
    if "level" in frame.columns:
        frame = frame.filter(pl.col("level") == "estimate")
    if role is not None:
        frame = frame.filter(pl.col("role") == role)
    if frame.is_empty():
        who = f" from {role}s" if role is not None else ""
        raise NotApplicable(f"no estimate answers{who}: nobody said what share of the improvement is due to "
                            "the program")

    score = frame["score"].cast(pl.Float64).to_numpy()
    certainty = frame["confidence"].cast(pl.Float64).to_numpy()
    unanswered = ~np.isfinite(score) | ~np.isfinite(certainty)
    with np.errstate(invalid="ignore"):
        out_of_range = ~unanswered & ((score < 0) | (score > 100) | (certainty < 0) | (certainty > 100))
    share = np.where(unanswered | out_of_range, 0.0, score / 100 * certainty / 100)
    credits = observed_change * share
    n = credits.size
    point = float(credits.mean())
    draws = cluster_weights(n, replicates=replicates, seed=seed) @ credits / n

    warnings = []
    if unanswered.any():
        warnings.append(f"{int(unanswered.sum())} of {n} answers lack a share or a confidence: counted as 0")
    if out_of_range.any():
        warnings.append(f"{int(out_of_range.sum())} of {n} answers lie outside 0–100: counted as 0")
    if n < _FEW_RESPONDENTS:
        warnings.append(f"only {n} answer{'s' if n != 1 else ''}: the average share rests on a handful of opinions")
    if observed_change <= 0:
        warnings.append("the observed change is not an improvement: there is nothing to credit the program with")
    roles = frame["role"].value_counts().sort("role")
    answered = ~(unanswered | out_of_range)
    level = 0.5 + confidence / 2
    spread = (float(np.quantile(draws, 1 - level)), float(np.quantile(draws, level)))
    warnings.append("an opinion, not a measurement: respondents cannot see what would have happened without "
                    "training, so the interval runs from no effect to the whole observed change and nothing is "
                    "credited on it alone")
    return Effect(
        method=f"{_METHOD[role]} (opinion)", estimate=point,
        ci_low=min(0.0, float(observed_change)), ci_high=max(0.0, float(observed_change)),
        p_value=float("nan"), std_error=float("nan"), confidence=confidence, replicates=0,
        prob_positive=float("nan"), baseline=baseline,
        assumptions=(
            "the respondents' own estimates of the share due to training, discounted by their confidence: an "
            "opinion of what training did, not a causal estimate; a conservative fallback when no comparison "
            "group exists",
            "a missing or out-of-range answer counts as 0 (Phillips' conservative rule)",
            "the interval is what a self-report can and cannot know: the program's share of the observed change "
            "lies between none of it and all of it; the answers' own spread is in the details",
        ),
        details={
            "observed_change": float(observed_change), "answers": float(n),
            "unanswered": float(unanswered.sum()), "out_of_range": float(out_of_range.sum()),
            "mean_share": float(score[answered].mean() / 100) if answered.any() else 0.0,
            "mean_confidence": float(certainty[answered].mean() / 100) if answered.any() else 0.0,
            "adjusted_share": float(share.mean()),
            "answers_spread_low": spread[0], "answers_spread_high": spread[1],
            "answers_std_error": float(draws.std(ddof=1)) if draws.size > 1 else float("nan"),
            "answers_replicates": float(replicates),
        },
        diagnostics={
            "answers_by_role": {str(r): float(c) for r, c in roles.iter_rows()},
            "adjusted_shares": [float(s) for s in share],
        },
        warnings=tuple(warnings),
    )


def _trained_change(panel: UnitPanel, periods: int) -> tuple[float, float]:
    """The trained units' pooled outcome over the ``periods`` periods before training and the ``periods`` from it on.

    Event times −``periods`` … −1 against 0 … ``periods`` − 1: the period that contains the
    training counts as after, as everywhere in the family. Unobserved unit-periods are left out.
    """
    f = panel.frame.filter(pl.col("treated_at").is_not_null())
    if f.is_empty():
        raise NotApplicable("nobody was trained: there is no change to attribute")
    f = f.with_columns(panel.event_time().alias("offset"))
    before = panel.value(f.filter((pl.col("offset") >= -periods) & (pl.col("offset") < 0)))
    after = panel.value(f.filter((pl.col("offset") >= 0) & (pl.col("offset") < periods)))
    return before, after


@estimator("participant", label="participant and manager estimates (Phillips)", needs_comparison=False,
           refutable=False, position=80)
def _participant(panel: UnitPanel, s: EstimatorSettings) -> Effect:
    """Phillips' estimate: the trained group's observed change × the share respondents credit."""
    surveys = None if s.surveys is None else as_polars(s.surveys, "surveys")
    if surveys is None or surveys.is_empty():
        raise NotApplicable("nobody answered an estimate question about the program in surveys.csv")
    before, after = _trained_change(panel, s.post_months)
    if before != before or after != after:
        raise NotApplicable("the trained units have no outcome before or after training to attribute")
    effect = estimate_participant(after - before, surveys, baseline=before, confidence=s.confidence,
                                  replicates=s.replicates, seed=s.seed)
    notes = panel.unobserved_warnings()
    return replace(effect, warnings=(*notes, *effect.warnings)) if notes else effect
