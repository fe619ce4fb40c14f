"""Dose-response for micro-lessons: how much more a unit's outcome changed per lesson completed.

Micro-learning has no single "trained" date: reps take a few lessons or many, over weeks. Engagement
is then a continuous treatment, and the question becomes: did units whose deals came after more
lessons improve more? Each unit's change in outcome (after − before its own anchor: the period of
its first lesson, or for units with no lessons a pseudo anchor drawn from the learners' anchors so
both span the same calendar periods) is regressed on its change in dose, weighted by how many deals
(the outcome's denominator) stand behind the change. The slope is the change per lesson; units
without lessons anchor the line at zero and carry the org's trend. Periods are the unit panel's
grain (months by default), and the anchor period counts as after, as everywhere in the family.

The dose is time-varying: a deal can only be helped by the lessons its owner had completed
before it, so each unit-month's dose is the lessons completed before that month plus the month's
own lessons by the share of the month left after them (the expected number before a deal of that
month), and a window's dose is its unit-months' doses averaged over their deals. Regressing on
the total number of lessons instead credits every deal with lessons done after it: in simulated
micro-lessons that slope recovered only 57% of the per-lesson effect. Lessons without dates (one
row per unit with a count) still give that total-count slope, with a warning.

Engagement is chosen by the reps: those who do more lessons may be the ones who would have
improved anyway (motivated, ramping up, with a good quarter ahead). Unless lessons were
assigned, the slope is an association, and the result says so.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from training_roi.isolate.effect import Effect, FloatArray, NotApplicable, cluster_weights, effect_from_draws
from training_roi.measure.frames import TableLike, as_polars
from training_roi.measure.panels import UnitPanel

__all__ = ["SELF_SELECTION", "dose_changes", "estimate_dose_response"]

SELF_SELECTION = (
    "engagement is self-selected: reps who complete more lessons may be the ones who would have improved "
    "anyway, so the slope is an association between lessons and improvement, not the lessons' effect, "
    "unless lessons were assigned"
)
"""The caveat every dose-response result carries."""
UNDATED = (
    "lessons have no dates (one row per unit with a count): every lesson counts for every deal of the window, "
    "also deals closed before it was done, so the slope understates the effect per lesson (by about a third in "
    "simulated micro-lessons); pass one row per lesson with its date (lesson_dates) to count only earlier lessons"
)
"""The warning of a dose-response on lesson counts without dates."""


def _when(panel: UnitPanel, column: str) -> pl.Expr:
    """A lesson's day as a date (its period number at the ``index`` grain, where periods have no days)."""
    return pl.col(column).cast(pl.Date if panel.calendar.calendar else pl.Int64)


def _per_unit(panel: UnitPanel, doses: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """The doses as one row per unit (``unit``, ``lessons``, ``first_lesson``), and the dated lessons if any.

    Dated doses have one row per lesson (``unit``, ``completed_on``, and optionally ``lesson``:
    a lesson listed twice counts once, from its first date); undated ones one row per unit.
    """
    if "completed_on" not in doses.columns:
        return doses, None
    if "unit" not in doses.columns:
        raise ValueError(f"the doses have no column unit (columns: {', '.join(doses.columns)})")
    if doses["completed_on"].null_count():
        raise ValueError("lessons without a completed_on date in the doses: every dated lesson needs its day")
    dated = doses.select(pl.col("unit").cast(pl.String), _when(panel, "completed_on"),
                         *([pl.col("lesson")] if "lesson" in doses.columns else []))
    if "lesson" in dated.columns:
        dated = dated.group_by("unit", "lesson").agg(pl.col("completed_on").min())
    dated = dated.select("unit", "completed_on").sort("unit", "completed_on")
    per_unit = dated.group_by("unit").agg(lessons=pl.len().cast(pl.Int64), first_lesson=pl.col("completed_on").min())
    return per_unit, dated


def _anchors(panel: UnitPanel, doses: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Each unit's lessons, anchor period (``at``, a period number) and whether the anchor is a pseudo one."""
    missing = [c for c in ("unit", "lessons") if c not in doses.columns]
    if missing:
        raise ValueError(f"the doses have no column {', '.join(missing)} (columns: {', '.join(doses.columns)})")
    if doses.filter(pl.col("lessons") < 0).height or doses["lessons"].null_count():
        raise ValueError("lessons must be a count of lessons completed (0 or more) for every unit listed")
    dupes = doses.filter(pl.col("unit").is_duplicated())["unit"].unique().sort().head(5).to_list()
    if dupes:
        raise ValueError(f"units listed more than once in the doses: {', '.join(map(str, dupes))}")
    first = (_when(panel, "first_lesson") if "first_lesson" in doses.columns
             else pl.lit(None, dtype=panel.frame.schema["treated_at"])).alias("first_lesson")
    given = doses.select(pl.col("unit").cast(pl.String), pl.col("lessons").cast(pl.Float64), first)
    units = (panel.units.select(pl.col("unit").cast(pl.String), "treated_at")
             .join(given, on="unit", how="left")
             .with_columns(pl.col("lessons").fill_null(0.0))
             .with_columns(anchor=pl.when(pl.col("lessons") > 0)
                           .then(pl.coalesce("first_lesson", "treated_at")).otherwise(None))
             .sort("unit"))
    engaged = units.filter(pl.col("lessons") > 0)
    if engaged.is_empty():
        raise NotApplicable("no unit of the panel completed a lesson: a dose-response needs learners")
    undated = engaged.filter(pl.col("anchor").is_null())["unit"].head(5).to_list()
    if undated:
        raise ValueError(f"units with lessons but no date of a first lesson (no first_lesson in the doses, no "
                         f"treated_at in the panel): {', '.join(undated)}")
    # Units without lessons get a first-lesson period drawn from the learners', so their before
    # and after span the same calendar periods and an org-wide trend cancels from the slope.
    at = units.select(panel.period_index("anchor")).to_series().to_numpy()
    idle = units["lessons"].to_numpy() == 0
    drawn = np.random.default_rng(seed).choice(at[~idle], size=int(idle.sum()))
    at = at.copy()
    at[idle] = drawn
    return units.select("unit", "lessons").with_columns(
        pl.Series("at", at.astype(np.int64)),
        pl.Series("pseudo_anchor", idle),
    )


def _unit_month_doses(panel: UnitPanel, rows: pl.DataFrame, dated: pl.DataFrame) -> pl.DataFrame:
    """Lessons completed before the deals of each (unit, period) of ``rows``: ``unit``, ``month``, ``dose``.

    A lesson done before the period counts fully; one done within it counts the share of the
    period's days after it — a lesson on day d of a month of D days counts (D − d) / D — since a
    lesson helps from the day after and a deal is as likely on any day of its period. At the
    ``index`` grain, where periods have no days, a lesson of the deal's own period counts half
    (it is as likely to come before the deal as after).
    """
    calendar = panel.calendar
    lesson = panel.period_index("completed_on")
    if calendar.calendar:
        start, end = calendar.start_expr(lesson), calendar.start_expr(lesson + 1)
        length = (end - start).dt.total_days().cast(pl.Float64)
        after = (end - pl.col("completed_on")).dt.total_days().cast(pl.Float64) - 1.0
        share = after / length
    else:
        share = pl.lit(0.5)
    done = (dated.with_columns(lesson_month=lesson, share=share)
            .group_by("unit", "lesson_month").agg(lessons=pl.len().cast(pl.Float64), share=pl.col("share").sum()))
    return (rows.select("unit", "month").unique()
            .join(done, on="unit")
            .group_by("unit", "month")
            .agg(dose=pl.col("lessons").filter(pl.col("lesson_month") < pl.col("month")).sum()
                 + pl.col("share").filter(pl.col("lesson_month") == pl.col("month")).sum()))


def dose_changes(
    panel: UnitPanel,
    *,
    doses: TableLike,
    pre_months: int = 6,
    post_months: int = 6,
    seed: int = 7,
) -> pl.DataFrame:
    """Each unit's lessons, dose and change in outcome around its anchor: the data of the dose-response line.

    ``doses`` is either one row per completed lesson — ``unit`` and ``completed_on`` (a date),
    optionally ``lesson`` (a lesson listed twice counts once, from its first date), as
    :func:`lesson_dates` gives — or one row per unit — ``unit`` and ``lessons``, optionally
    ``first_lesson``, as :func:`lesson_counts` gives. Units of the panel not in it did none;
    units not in the panel are ignored. A unit's anchor is the period that contains its first
    lesson (with undated counts and no ``first_lesson``, the panel's ``treated_at``); units
    without lessons get a pseudo anchor drawn (with ``seed``) from the learners' anchors.
    Periods are the panel's grain (months by default) and ``pre_months`` and ``post_months``
    count them: the before window is the ``pre_months`` periods before the anchor period, the
    after window that period and the ``post_months − 1`` after it (the anchor period counts as
    after, as everywhere in the family), both cut to the panel's periods. The outcome is pooled
    in each window (Σ numerator / Σ denominator; per unit-period without a denominator) over the
    unit-periods with an outcome. A unit with no deals (no periods) in either window has no
    change and is left out. At the ``index`` grain dates are period numbers.

    A window's dose is the number of lessons completed before its deals, averaged over them:
    each unit-period counts the lessons done before the period and, of the period's own lessons,
    the share of the period left after each. Undated counts have no timing: every deal of the
    after window gets all of the unit's lessons (``post_dose = lessons``, ``pre_dose = 0``).

    Returns
    -------
    polars.DataFrame
        ``unit``, ``lessons`` (completed in total), ``anchor`` (the anchor period's first day, or
        its number at the ``index`` grain), ``pseudo_anchor``,
        ``pre_numerator``, ``pre_denominator``, ``post_numerator``, ``post_denominator``,
        ``pre``, ``post``, ``change``, ``pre_dose``, ``post_dose``, ``dose`` (post − pre: the
        change in lessons behind the deals, the regressor) and ``weight`` —
        1 / (1/pre_denominator + 1/post_denominator), the precision of a difference of two
        rates, so a change backed by more deals counts more.

    Raises
    ------
    ValueError
        Windows shorter than a period, malformed doses, or learners without a date.
    NotApplicable
        No unit of the panel completed a lesson.
    """
    if pre_months < 1 or post_months < 1:
        raise ValueError(f"pre_months and post_months must be at least 1, got {pre_months} and {post_months}")
    doses = as_polars(doses, "doses")
    per_unit, dated = _per_unit(panel, doses)
    anchors = _anchors(panel, per_unit, seed)
    den = pl.col(panel.denominator) if panel.denominator is not None else pl.lit(1.0)
    rows = (panel.observed.select(pl.col("unit").cast(pl.String), panel.period_index("period").alias("month"),
                                  pl.col(panel.numerator).cast(pl.Float64).alias("num"),
                                  den.cast(pl.Float64).alias("den"))
            .join(anchors.select("unit", "lessons", "at"), on="unit")
            .with_columns(k=pl.col("month") - pl.col("at"))
            .with_columns(window=pl.when((pl.col("k") >= -pre_months) & (pl.col("k") < 0)).then(pl.lit("pre"))
                          .when((pl.col("k") >= 0) & (pl.col("k") < post_months)).then(pl.lit("post")))
            .filter(pl.col("window").is_not_null()))
    if dated is None:
        rows = rows.with_columns(dose=pl.when(pl.col("window") == "post").then(pl.col("lessons")).otherwise(0.0))
    else:
        rows = (rows.join(_unit_month_doses(panel, rows, dated), on=["unit", "month"], how="left")
                .with_columns(pl.col("dose").fill_null(0.0)))

    def total(column: str, window: str) -> pl.Expr:
        return pl.col(column).filter(pl.col("window") == window).sum()

    sums = rows.with_columns(dose=pl.col("dose") * pl.col("den")).group_by("unit").agg(
        pre_numerator=total("num", "pre"), pre_denominator=total("den", "pre"), pre_dosage=total("dose", "pre"),
        post_numerator=total("num", "post"), post_denominator=total("den", "post"), post_dosage=total("dose", "post"),
    )
    out = (anchors.select("unit", "lessons", panel.calendar.start_expr(pl.col("at")).alias("anchor"), "pseudo_anchor")
           .join(sums, on="unit", how="left")
           .with_columns(pl.col("^(pre|post)_(numerator|denominator|dosage)$").fill_null(0.0))
           .filter((pl.col("pre_denominator") > 0) & (pl.col("post_denominator") > 0))
           .with_columns(pre=pl.col("pre_numerator") / pl.col("pre_denominator"),
                         post=pl.col("post_numerator") / pl.col("post_denominator"),
                         pre_dose=pl.col("pre_dosage") / pl.col("pre_denominator"),
                         post_dose=pl.col("post_dosage") / pl.col("post_denominator"))
           .with_columns(change=pl.col("post") - pl.col("pre"), dose=pl.col("post_dose") - pl.col("pre_dose"),
                         weight=1.0 / (1.0 / pl.col("pre_denominator") + 1.0 / pl.col("post_denominator")))
           .drop("pre_dosage", "post_dosage"))
    return out.sort("unit")


def _wls_slopes(x: FloatArray, y: FloatArray, w: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Weighted least-squares intercepts and slopes of ``y`` on ``x``, one per row of weights ``w``.

    ``w`` is replicates × units (a single row for the point estimate); centring first keeps the
    sums well conditioned.
    """
    xc, yc = x - x.mean(), y - y.mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        sw = w.sum(axis=1)
        mx, my = (w @ xc) / sw, (w @ yc) / sw
        sxx = w @ (xc * xc) - sw * mx * mx
        sxy = w @ (xc * yc) - sw * mx * my
        slope = sxy / sxx
    slope[~np.isfinite(slope) | (sxx <= 1e-12 * np.maximum(sw, 1.0))] = np.nan
    intercept = (my + y.mean()) - slope * (mx + x.mean())
    return intercept, slope


def _bins(x: FloatArray) -> list[tuple[str, FloatArray]]:
    """Dose bins for a chart: no lessons, then each dose, or five bands of learners when doses vary widely.

    Each bin is its label and which units fall in it; every unit falls in exactly one.
    """
    whole = bool(np.all(x == np.round(x)))

    def label(lo: float, hi: float) -> str:
        def f(v: float) -> str:
            return f"{v:.0f}" if whole else f"{v:.1f}"

        return f(lo) if lo == hi else f"{f(lo)}–{f(hi)}"

    positive = np.unique(x[x > 0])
    bins: list[tuple[str, FloatArray]] = [("0", x == 0)] if (x == 0).any() else []
    if positive.size <= 6:
        return bins + [(label(v, v), x == v) for v in positive]
    inner = np.unique(np.quantile(x[x > 0], np.linspace(0, 1, 6))[1:-1])
    band = np.where(x > 0, np.searchsorted(inner, x, side="left"), -1)
    for b in np.unique(band[band >= 0]):
        inside = band == b
        bins.append((label(float(x[inside].min()), float(x[inside].max())), inside))
    return bins


def estimate_dose_response(
    panel: UnitPanel,
    *,
    doses: TableLike,
    pre_months: int = 6,
    post_months: int = 6,
    confidence: float = 0.95,
    replicates: int = 999,
    seed: int = 7,
) -> Effect:
    """The change in outcome per lesson completed: the slope of a weighted line through units' changes.

    For micro-lessons, where engagement is a count rather than a date. Each unit's change (see
    :func:`dose_changes`) is regressed on its change in dose — the lessons completed before its
    deals, averaged over them — by weighted least squares; the estimate is the slope (for win
    rate, points of rate per lesson), its interval a bootstrap over units. Pass ``doses`` as
    one row per lesson with its date (:func:`lesson_dates`): with counts only
    (:func:`lesson_counts`) every lesson is credited to deals before it too, and the slope
    understates the effect. The intercept — the change at zero lessons — is the org's trend, in
    ``details``. ``diagnostics["bins"]`` holds the mean change by dose band with its units (and
    the line's value there), to draw the line over the data and see whether it is straight.

    Engagement is self-selected: the slope is an association unless lessons were assigned, and
    the result's assumptions and warnings say so.

    Raises
    ------
    NotApplicable
        No unit completed a lesson, fewer than two learners have a change, or every unit had the
        same dose (no slope to fit).
    ValueError
        Malformed doses or windows (see :func:`dose_changes`).
    """
    doses = as_polars(doses, "doses")
    changes = dose_changes(panel, doses=doses, pre_months=pre_months, post_months=post_months, seed=seed)
    dated = "completed_on" in doses.columns
    lessons = changes["lessons"].to_numpy().astype(np.float64)
    x = changes["dose"].to_numpy().astype(np.float64)
    y = changes["change"].to_numpy().astype(np.float64)
    w = changes["weight"].to_numpy().astype(np.float64)
    engaged = lessons > 0
    what = "closed deals" if panel.denominator is not None else f"{panel.period_noun}s"
    if int(engaged.sum()) < 2:
        raise NotApplicable(f"fewer than two units with lessons have {what} both before and after their first lesson")
    if np.unique(x).size < 2:
        raise NotApplicable(f"every unit had the same dose ({x[0]:.1f} lessons before its deals): there is no dose "
                            "to compare")
    (intercept,), (slope,) = _wls_slopes(x, y, w[None, :])
    _, draws = _wls_slopes(x, y, cluster_weights(x.size, replicates=replicates, seed=seed) * w[None, :])
    pre_engaged = changes.filter(pl.col("lessons") > 0)
    baseline = float(pre_engaged["pre_numerator"].sum()) / float(pre_engaged["pre_denominator"].sum())
    bins = []
    for label, inside in _bins(x):
        wi = w[inside]
        mean_dose = float((wi * x[inside]).sum() / wi.sum())
        bins.append({
            "label": label, "low": float(x[inside].min()), "high": float(x[inside].max()),
            "units": int(inside.sum()), "mean_lessons": mean_dose,
            "mean_change": float((wi * y[inside]).sum() / wi.sum()),
            "weight": float(wi.sum()),
            "fitted_change": float(intercept + slope * mean_dose),
        })
    dropped = panel.units.height - changes.height
    warnings = [SELF_SELECTION, *panel.unobserved_warnings()]
    if not dated:
        warnings.append(UNDATED)
    if dropped:
        warnings.append(f"{dropped:,} of {panel.units.height:,} units had no {what} before or after their "
                        f"(pseudo) first-lesson {panel.period_noun} and were left out")
    if int(engaged.sum()) < 30:
        warnings.append(f"only {int(engaged.sum())} units with lessons: the slope rests on few learners")
    if not (~engaged).any():
        warnings.append("every unit completed lessons: nothing shows the change without lessons, so the "
                        "org's trend is part of the slope's intercept only through extrapolation")
    return effect_from_draws(
        "dose-response (per lesson)", float(slope), draws, baseline=baseline, confidence=confidence,
        assumptions=(
            SELF_SELECTION,
            ("a lesson counts for the deals after it: a unit's dose is the lessons it had completed before its "
             "deals" if dated else
             "every lesson counts for every deal of the after window, also deals before it (lessons without dates)"),
            "linear dose: every lesson adds the same change, the first as the tenth (the binned means show "
            "where that fails)",
            "units without lessons, around pseudo anchors drawn from the learners' first-lesson "
            f"{panel.period_noun}s, show the change that would have happened with no lessons",
            "no spill-over: one unit's lessons do not change another unit's outcomes",
        ),
        details={
            "intercept": float(intercept),
            "units": float(x.size),
            "units_with_lessons": float(engaged.sum()),
            "mean_lessons": float(lessons[engaged].mean()),
            "max_lessons": float(lessons.max()),
            "mean_dose": float(x[engaged].mean()),
            "mean_dose_weighted": float((w[engaged] * x[engaged]).sum() / w[engaged].sum()),
            "max_dose": float(x.max()),
            "dated": float(dated),
            "pre_months": float(pre_months),
            "post_months": float(post_months),
        },
        diagnostics={"bins": bins, "units_left_out": dropped},
        warnings=warnings,
    )
