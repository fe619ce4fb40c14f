"""Each unit's knowledge gaps, what closing them has been worth, and the lesson each should take next.

**Gaps.** An assessment answered item by item (xAPI ``answered`` with ``result.success``) says,
per unit and skill, how many of the skill's items were answered and how many correctly. A few
answers are a noisy measure, so each unit's mastery is shrunk towards the skill's average
(empirical Bayes, a beta-binomial prior per skill fitted by the method of moments): mastery =
(correct + κ·μ) ÷ (answers + κ), and the **gap** is 1 − mastery, the share of the skill's items
the unit is expected to miss. A unit that answered nothing gets the skill's average gap, said so.

**What closing a gap has been worth.** Each unit's change in the KPI (the headline's windows) is
regressed, by weighted least squares with HC3 errors (statsmodels), on its exposure to each skill —
the share of its window after its first lesson of the skill, as in the lesson map — on that
exposure times its gap in the skill (centred on the skill's average gap), and on the gaps alone::

    change = α + Σ_s a_s·E_s + Σ_s b_s·E_s·(g_s − ḡ_s) + Σ_s c_s·(g_s − ḡ_s)

so a lesson of skill ``s`` is associated with a change of a_s + b_s·(g_s − ḡ_s) for a unit whose
gap is g_s: more for a unit with a larger gap when b_s > 0.

**The next lesson.** For every skill a unit has not yet taken a lesson in, the expected change is
that line at the unit's own gap, with its standard error from the coefficients' covariance; the
unit's recommendations are its skills with the largest expected change, each with its reason: the
gap (and how many answers it rests on), the expected change and its interval, and whether the
lesson stands out for the unit against the average lesson (the contrast below, its interval —
simultaneous over the skills and the gaps — above zero). The lesson is the skill's most-taken
lesson the unit has not done.

**What it is not.** Reps choose their lessons, and keen reps do more of them and improve anyway: the
a_s carry that shared lean, which — assumed alike for every skill: it is not if keen learners
favour some skills' lessons — moves every skill's expected change alike and so leaves each unit's
ranking as it is, but not the size. So whether a lesson stands out for a unit is judged
against the average lesson (its expected change minus the mean of the skills' a_s), where the lean
cancels, as in the lesson map. The evidence is an *association*, and every output says
so; assign lessons at random to isolate their effects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import ArrayLike
from scipy import stats

from training_roi.errors import NotApplicable

__all__ = ["EVIDENCE", "SELF_SELECTION", "GapEffects", "Recommendations", "gap_effects", "recommend",
           "skill_gaps"]

EVIDENCE = "association"
"""Lessons are chosen by the learners, never assigned: the expected changes are associations."""
SELF_SELECTION = (
    "reps choose which lessons to take, and keen reps do more and improve anyway: the expected change of a lesson "
    "carries that lean (assumed alike for every skill, so that each rep's ranking holds, though its size may be "
    "high); assign lessons at random to isolate their effects"
)
MIN_TAKERS = 10
"""Units with a lesson of a skill before the skill gets a line (the others are not recommended)."""


def skill_gaps(answers: ArrayLike, correct: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Each unit's gap in each skill (units × skills, in [0, 1]) and each skill's prior mastery.

    ``answers`` and ``correct`` count, per unit and skill, the answers given and the correct ones
    (an item answered twice counts twice). The prior per skill is a beta distribution fitted to the
    units with answers by the method of moments (its mean μ and concentration κ, from the shares'
    variance beyond the binomial noise, scaled by 1 − mean(1/n)); a skill nobody answered has gap NaN.
    """
    n = np.asarray(answers, dtype=np.float64)
    k = np.asarray(correct, dtype=np.float64)
    if n.shape != k.shape or n.ndim != 2:
        raise ValueError(f"answers and correct must be units × skills of one shape, not {n.shape} and {k.shape}")
    if (k > n).any() or (k < 0).any():
        raise ValueError("a unit cannot give more correct answers than it gave")
    mu = np.full(n.shape[1], np.nan)
    kappa = np.full(n.shape[1], np.nan)
    for s in range(n.shape[1]):
        has = n[:, s] > 0
        if not has.any():
            continue
        share = k[has, s] / n[has, s]
        m = float(k[has, s].sum() / n[has, s].sum())
        mu[s] = m
        # Method of moments: a share's variance is μ(1 − μ)/n from the binomial draw, plus
        # μ(1 − μ)/(κ + 1)·(1 − 1/n) from the spread between units; solve the second for κ.
        inverse = float(np.mean(1.0 / n[has, s]))
        noise = m * (1 - m) * inverse
        between = (float(share.var()) - noise) / (1 - inverse) if inverse < 1 else 0.0
        if between <= 1e-12:  # no spread beyond noise (or one answer each: none can be seen): the average
            kappa[s] = 1e6
        elif between >= m * (1 - m):  # more spread than a beta prior allows: barely shrink
            kappa[s] = 0.5
        else:
            kappa[s] = max(m * (1 - m) / between - 1, 0.5)
    mastery = (k + kappa * mu) / (n + kappa)
    return 1.0 - mastery, mu


@dataclass(frozen=True)
class GapEffects:
    """Per skill, the change associated with its first lesson, and how it grows with the unit's gap.

    ``table``: ``skill``, ``takers`` (units with a lesson of it), ``average_gap``, ``at_average``
    (a_s: the change for a unit with the skill's average gap) with ``low``/``high``, ``per_gap`` (b_s:
    per unit of gap, i.e. from no item missed to all) with ``per_gap_low``/``per_gap_high``;
    skills with fewer than :data:`MIN_TAKERS` takers have nulls. ``coefficients`` and
    ``covariance`` hold (a_s, b_s) per fitted skill in ``fitted`` order.
    """

    outcome: str
    table: pl.DataFrame
    fitted: tuple[str, ...]
    coefficients: np.ndarray = field(repr=False)
    covariance: np.ndarray = field(repr=False)
    average_gap: dict[str, float] = field(default_factory=dict)
    units: int = 0
    confidence: float = 0.95
    evidence: str = EVIDENCE
    caveat: str = SELF_SELECTION
    warnings: tuple[str, ...] = ()

    def expected(self, skill: str, gap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The expected change of a first lesson of ``skill`` at each gap in ``gap``, and its standard error."""
        i = self.fitted.index(skill)
        a, b = self.coefficients[2 * i], self.coefficients[2 * i + 1]
        v = self.covariance[2 * i:2 * i + 2, 2 * i:2 * i + 2]
        d = np.asarray(gap, dtype=np.float64) - self.average_gap[skill]
        se = np.sqrt(np.clip(v[0, 0] + 2 * d * v[0, 1] + d * d * v[1, 1], 0, None))
        return a + b * d, se

    def versus_average(self, skill: str, gap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The expected change at each gap minus the average skill's first lesson at its average gap, and its error.

        Every skill's line carries the lean of keen learners alike; against the average lesson it
        cancels, so this contrast is what says whether a skill's lesson stands out for a unit.
        """
        i = self.fitted.index(skill)
        k = len(self.fitted)
        d = np.asarray(gap, dtype=np.float64) - self.average_gap[skill]
        c = np.zeros((d.size, 2 * k))
        c[:, 0:2 * k:2] = -1.0 / k
        c[:, 2 * i] += 1.0
        c[:, 2 * i + 1] = d
        value = c @ self.coefficients
        se = np.sqrt(np.clip(np.einsum("ij,jk,ik->i", c, self.covariance, c), 0, None))
        return value, se


def gap_effects(change: ArrayLike, exposure: ArrayLike, gaps: ArrayLike, skills: Sequence[str], *,
                weights: ArrayLike | None = None, confidence: float = 0.95, outcome: str = "outcome") -> GapEffects:
    """Fit the line of each skill's lesson against the unit's gap (units × skills ``exposure`` and ``gaps``).

    Raises
    ------
    ValueError
        Shapes that do not agree, an exposure outside [0, 1], a gap that is not finite.
    NotApplicable
        No skill with :data:`MIN_TAKERS` takers, or fewer units than coefficients.
    """
    import statsmodels.api as sm

    y = np.asarray(change, dtype=np.float64).ravel()
    x = np.asarray(exposure, dtype=np.float64)
    g = np.asarray(gaps, dtype=np.float64)
    if x.shape != (y.size, len(skills)) or g.shape != x.shape:
        raise ValueError(f"exposure and gaps must have one row per unit ({y.size}) and one column per skill "
                         f"({len(skills)}), not the shapes {x.shape} and {g.shape}")
    if ((x < 0) | (x > 1)).any() or not np.isfinite(x).all() or not np.isfinite(g).all():
        raise ValueError("exposure must lie in [0, 1] and every gap must be a number")
    w = np.ones(y.size) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    takers = (x > 0).sum(axis=0)
    fitted = np.flatnonzero(takers >= MIN_TAKERS)
    if fitted.size == 0:
        raise NotApplicable(f"no skill has a lesson taken by {MIN_TAKERS} units or more")
    centre = np.average(g, axis=0, weights=w)
    d = g - centre
    columns = [np.ones(y.size)]
    for j in fitted:
        columns += [x[:, j], x[:, j] * d[:, j]]
    columns += [d[:, j] for j in fitted]
    design = np.column_stack(columns)
    if y.size <= design.shape[1] + 1:
        raise NotApplicable(f"{y.size} units cannot fit {fitted.size} skills: more units than coefficients needed")
    fit = sm.WLS(y, design, weights=w).fit(cov_type="HC3")
    k = 2 * fitted.size
    beta = np.asarray(fit.params)[1:k + 1]
    cov = np.asarray(fit.cov_params())[1:k + 1, 1:k + 1]
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    position = {int(j): i for i, j in enumerate(fitted)}
    rows: list[dict[str, Any]] = []
    for s, name in enumerate(skills):
        i = position.get(s)
        row: dict[str, Any] = {"skill": name, "takers": int(takers[s]), "average_gap": float(centre[s])}
        if i is None:
            rows.append(row | dict.fromkeys(("at_average", "low", "high", "per_gap", "per_gap_low", "per_gap_high")))
            continue
        a, b, sa, sb = beta[2 * i], beta[2 * i + 1], se[2 * i], se[2 * i + 1]
        rows.append(row | {"at_average": float(a), "low": float(a - z * sa), "high": float(a + z * sa),
                           "per_gap": float(b), "per_gap_low": float(b - z * sb), "per_gap_high": float(b + z * sb)})
    warns = []
    few = len(skills) - fitted.size
    if few:
        warns.append(f"{few} skills have a lesson taken by fewer than {MIN_TAKERS} units: they get no line and "
                     "are not recommended")
    return GapEffects(outcome=outcome, table=pl.DataFrame(rows, schema=_EFFECTS_SCHEMA),
                      fitted=tuple(skills[int(j)] for j in fitted), coefficients=beta, covariance=cov,
                      average_gap={skills[int(j)]: float(centre[j]) for j in fitted}, units=int(y.size),
                      confidence=confidence, warnings=tuple(warns))


@dataclass(frozen=True)
class Recommendations:
    """The next lessons of every unit, best first, each with its reason.

    ``table``: ``unit``, ``rank``, ``skill``, ``gap``, ``answers`` (the unit's items of the skill),
    ``expected`` (the change associated with the skill's first lesson at the unit's gap) with
    ``low``/``high``, ``versus_average`` (that change over the average skill's first lesson at its
    average gap) with ``versus_low``/``versus_high`` (simultaneous over the skills and the gaps: a
    Scheffé band per skill, Bonferroni over the skills), and
    ``established`` (the lesson stands out for the unit: ``versus_low`` > 0).
    """

    table: pl.DataFrame
    per_unit: int
    evidence: str = EVIDENCE


def recommend(units: Sequence[str], gaps: ArrayLike, answers: ArrayLike, covered: ArrayLike, skills: Sequence[str],
              effects: GapEffects, *, per_unit: int = 3) -> Recommendations:
    """Each unit's ``per_unit`` skills not yet covered with the largest expected change at its own gap."""
    g = np.asarray(gaps, dtype=np.float64)
    n = np.asarray(answers, dtype=np.int64)
    done = np.asarray(covered, dtype=bool)
    z = float(stats.norm.ppf(0.5 + effects.confidence / 2))
    # Standing out is judged over every skill and every gap at once: each skill's contrast is a line in
    # the gap (two coefficients, a Scheffé band) and the skills are many (Bonferroni). Pointwise, with
    # a dozen skills and thousands of reps' gaps, some lesson stood out by chance in one org of four.
    k = max(len(effects.fitted), 1)
    z_all = float(np.sqrt(stats.chi2.ppf(1 - (1 - effects.confidence) / k, 2)))
    frames = []
    for s, name in enumerate(skills):
        if name not in effects.fitted:
            continue
        open_ = np.flatnonzero(~done[:, s])
        expected, se = effects.expected(name, g[open_, s])
        versus, versus_se = effects.versus_average(name, g[open_, s])
        frames.append(pl.DataFrame({
            "unit": [units[int(i)] for i in open_], "skill": name, "gap": g[open_, s], "answers": n[open_, s],
            "expected": expected, "low": expected - z * se, "high": expected + z * se, "versus_average": versus,
            "versus_low": versus - z_all * versus_se, "versus_high": versus + z_all * versus_se,
        }, schema=_REC_SCHEMA))
    if not frames:
        return Recommendations(pl.DataFrame(schema=_REC_SCHEMA | {"rank": pl.Int64, "established": pl.Boolean}),
                               per_unit)
    table = (pl.concat(frames).sort(["unit", "expected", "skill"], descending=[False, True, False])
             .with_columns(rank=pl.int_range(1, pl.len() + 1).over("unit"))
             .filter(pl.col("rank") <= per_unit)
             .with_columns(established=pl.col("versus_low") > 0))
    return Recommendations(table.select("unit", "rank", "skill", "gap", "answers", "expected", "low", "high",
                                        "versus_average", "versus_low", "versus_high", "established"), per_unit)


_EFFECTS_SCHEMA: dict[str, Any] = {
    "skill": pl.String, "takers": pl.Int64, "average_gap": pl.Float64, "at_average": pl.Float64, "low": pl.Float64,
    "high": pl.Float64, "per_gap": pl.Float64, "per_gap_low": pl.Float64, "per_gap_high": pl.Float64,
}
_REC_SCHEMA: dict[str, Any] = {
    "unit": pl.String, "skill": pl.String, "gap": pl.Float64, "answers": pl.Int64, "expected": pl.Float64,
    "low": pl.Float64, "high": pl.Float64, "versus_average": pl.Float64, "versus_low": pl.Float64,
    "versus_high": pl.Float64,
}
