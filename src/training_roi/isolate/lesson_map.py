"""Which lessons matter: each lesson's association with the change in a KPI, with the false-discovery rate held.

A micro-lesson program has dozens or hundreds of lessons, and the question after "did it work?"
is "which of them?". Each unit's change in the KPI (after − before its first lesson, or its
reference date when it took none: the headline's windows) is regressed, by weighted least squares,
on its exposure to every lesson at once — the share of its window that came after it completed
the lesson (0 when it never did; a lesson repeated counts once, from its first completion), so a
lesson done late in the window is credited with the deals after it, not those before: the map is
dose- and time-aware. Units that took no lesson anchor the line at zero and carry the org's trend.

**What is tested.** Reps who do more lessons are keener, and keen reps improve anyway; every
lesson's coefficient carries that shared lean. The map therefore tests each lesson against the
average lesson: its coefficient minus the mean of all the lessons' coefficients (a contrast with
an exact standard error from the coefficients' covariance). A lesson *matters* when that contrast
is positive at the false-discovery rate the study sets (Benjamini–Hochberg over every lesson, one-
sided, SciPy): among the lessons flagged, at most that share are expected to be flukes. Where most
lessons do nothing, the average is near zero and the contrast is the lesson's own effect; where
all help alike, no lesson stands out, and the dose-response estimate says how much a lesson adds
on average.

**What it is not.** Reps choose which lessons to take: the map is an *association*, not an
isolated effect, and every output says so. The standard errors are heteroskedasticity-robust
(HC3, by cluster when the units have one; statsmodels): with a hundred lessons fitted on a few
hundred units, HC1's errors were far too small — on outcomes of pure noise it flagged a lesson in
three draws of four, HC3 in none of fifty.
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

__all__ = ["EVIDENCE", "SELF_SELECTION", "LessonMap", "lesson_map"]

EVIDENCE = "association"
"""The strength of the map's evidence: lessons are chosen by the learners, never assigned."""
SELF_SELECTION = (
    "reps choose which lessons to take: a lesson that matters here is associated with a larger change in the KPI "
    "than the average lesson, among reps who took the same windows, but the reps who chose it may differ in ways "
    "the comparison does not see; assign lessons at random to isolate their effects"
)
MIN_TAKERS = 5
"""Units a lesson needs before it gets a coefficient (the others are listed, not estimated)."""


@dataclass(frozen=True)
class LessonMap:
    """Every lesson's association with the KPI's change, and which lessons stand out at the false-discovery rate.

    ``table``: one row per lesson — ``lesson``, ``takers`` (units that completed it),
    ``coefficient`` (the change associated with a full window after the lesson) with ``low`` and
    ``high``, ``versus_average`` (the coefficient minus the average lesson's) with its
    ``std_error``, ``p_value`` (one-sided, that it exceeds the average), ``q_value``
    (Benjamini–Hochberg) and ``matters`` (q ≤ ``fdr``); lessons with fewer than
    :data:`MIN_TAKERS` takers have nulls. Sorted by ``versus_average``, largest first.
    """

    outcome: str
    table: pl.DataFrame
    fdr: float
    confidence: float
    units: int
    takers: int
    evidence: str = EVIDENCE
    caveat: str = SELF_SELECTION
    diagnostics: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def matters(self) -> list[str]:
        """The lessons flagged, best first."""
        return self.table.filter(pl.col("matters"))["lesson"].to_list()

    def summary(self) -> str:
        """The lessons that stand out, in a few lines, with the caveat."""
        flagged = self.table.filter(pl.col("matters"))
        lines = [f"lesson map ({self.evidence}): {self.outcome} against {self.table.height} lessons, "
                 f"{self.units:,} units; false-discovery rate {self.fdr:.0%}",
                 f"  {flagged.height} lessons stand out" + (":" if flagged.height else "")]
        for r in flagged.iter_rows(named=True):
            lines.append(f"  {r['lesson']}: {r['versus_average']:+.4g} over the average lesson "
                         f"(q = {r['q_value']:.3g}, {r['takers']:,} takers)")
        lines += [f"  caveat  {self.caveat}", *(f"  warning  {w}" for w in self.warnings)]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def lesson_map(change: ArrayLike, exposure: ArrayLike, lessons: Sequence[str], *, weights: ArrayLike | None = None,
               cluster: ArrayLike | None = None, fdr: float = 0.1, confidence: float = 0.95,
               outcome: str = "outcome") -> LessonMap:
    """The lesson map from each unit's change and its exposure to each lesson (units × lessons, in [0, 1]).

    Raises
    ------
    ValueError
        Shapes that do not agree, an exposure outside [0, 1], a bad ``fdr`` or ``confidence``.
    NotApplicable
        Fewer than two lessons with :data:`MIN_TAKERS` takers, or fewer units than coefficients.
    """
    import statsmodels.api as sm

    if not 0 < fdr < 1 or not 0 < confidence < 1:
        raise ValueError(f"fdr and confidence must be between 0 and 1, not {fdr} and {confidence}")
    y = np.asarray(change, dtype=np.float64).ravel()
    x = np.asarray(exposure, dtype=np.float64)
    if x.ndim != 2 or x.shape != (y.size, len(lessons)):
        raise ValueError(f"exposure must have one row per unit ({y.size}) and one column per lesson "
                         f"({len(lessons)}), not the shape {x.shape}")
    if ((x < 0) | (x > 1)).any() or not np.isfinite(x).all():
        raise ValueError("exposure must lie in [0, 1]: the share of a unit's window after it completed the lesson")
    w = np.ones(y.size) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    takers = (x > 0).sum(axis=0)
    fitted = np.flatnonzero(takers >= MIN_TAKERS)
    if fitted.size < 2:
        raise NotApplicable(f"the lesson map needs two or more lessons taken by {MIN_TAKERS} units or more; "
                            f"{fitted.size} are")
    if y.size <= fitted.size + 1:
        raise NotApplicable(f"{y.size} units cannot fit {fitted.size} lessons: the map needs more units than lessons")
    thin = y.size < 10 * (fitted.size + 1)
    design = np.column_stack([np.ones(y.size), x[:, fitted]])
    model = sm.WLS(y, design, weights=w)
    fit = (model.fit(cov_type="cluster", cov_kwds={"groups": np.unique(np.asarray(cluster), return_inverse=True)[1]})
           if cluster is not None else model.fit(cov_type="HC3"))
    beta = np.asarray(fit.params)[1:]
    cov = np.asarray(fit.cov_params())[1:, 1:]
    k = beta.size
    centre = np.eye(k) - np.full((k, k), 1 / k)
    versus = centre @ beta
    se = np.sqrt(np.clip(np.diag(centre @ cov @ centre.T), 0, None))
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(se > 0, stats.norm.sf(versus / se), 1.0)
    q = stats.false_discovery_control(p, method="bh")
    beta_se = np.sqrt(np.clip(np.diag(cov), 0, None))
    rows: list[dict[str, Any]] = []
    position = {int(j): i for i, j in enumerate(fitted)}
    for j, name in enumerate(lessons):
        i = position.get(j)
        if i is None:
            rows.append({"lesson": name, "takers": int(takers[j]), "coefficient": None, "low": None, "high": None,
                         "versus_average": None, "std_error": None, "p_value": None, "q_value": None,
                         "matters": False})
            continue
        rows.append({"lesson": name, "takers": int(takers[j]), "coefficient": float(beta[i]),
                     "low": float(beta[i] - z * beta_se[i]), "high": float(beta[i] + z * beta_se[i]),
                     "versus_average": float(versus[i]), "std_error": float(se[i]), "p_value": float(p[i]),
                     "q_value": float(q[i]), "matters": bool(q[i] <= fdr)})
    table = pl.DataFrame(rows, schema=_SCHEMA).sort("versus_average", descending=True, nulls_last=True)
    warns = []
    if thin:
        warns.append(f"{y.size:,} units for {fitted.size} lessons: fewer than ten units a lesson, so each lesson's "
                     "figure is imprecise and few lessons can stand out")
    few = len(lessons) - fitted.size
    if few:
        warns.append(f"{few} lessons were taken by fewer than {MIN_TAKERS} units and are listed without a figure")
    return LessonMap(outcome=outcome, table=table, fdr=fdr, confidence=confidence, units=int(y.size),
                     takers=int((x > 0).any(axis=1).sum()), warnings=tuple(warns),
                     diagnostics={"average_lesson": float(beta.mean()), "r_squared": float(fit.rsquared),
                                  "standard_errors": "by cluster" if cluster is not None else "HC3",
                                  "lessons_fitted": int(k)})


_SCHEMA: dict[str, Any] = {
    "lesson": pl.String, "takers": pl.Int64, "coefficient": pl.Float64, "low": pl.Float64, "high": pl.Float64,
    "versus_average": pl.Float64, "std_error": pl.Float64, "p_value": pl.Float64, "q_value": pl.Float64,
    "matters": pl.Boolean,
}
