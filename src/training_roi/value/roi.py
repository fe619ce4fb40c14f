"""The money formulas: ROI, the seed article's model, conservative crediting and intervals.

Two kinds of arithmetic live here, on purpose:

* **Money** (benefit, cost, net benefit) and the figures derived from it for display (ROI %,
  benefit–cost ratio, payback) are ``Decimal``. Sums and differences of money are exact; each
  ratio is computed as *one* correctly rounded division of exact operands, at 34 significant
  digits (IEEE decimal128), so its sign is always the sign of the exact value and nothing is
  rounded for display until presentation.
* **Statistics** (a lift and its bootstrap replicates) are floats. Intervals of money figures are
  obtained from the lift's interval, vectorised with NumPy (:func:`value_intervals`).

Formulas (Phillips): net benefit = benefit − cost; ROI % = net benefit / cost × 100;
BCR = benefit / cost; payback = cost / (benefit / months of benefit), in months.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from decimal import Decimal, Inexact, localcontext
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from training_roi._format import relative as signed_share

__all__ = [
    "Credit",
    "ROIFigures",
    "SeedModel",
    "ValueIntervals",
    "conservative_credit",
    "percentile_interval",
    "roi",
    "roi_interval",
    "roi_pct_from_lift",
    "seed_model",
    "value_intervals",
    "value_intervals_from_lift",
]

#: Significant digits of every division (IEEE decimal128): far beyond any display rounding.
PRECISION = 34

Amount = Decimal | int | str
"""A money amount or rate as given: a ``Decimal``, an ``int`` or a decimal string (never a float,
whose binary value would make "exact" meaningless)."""


def _dec(value: Amount, name: str) -> Decimal:
    """``value`` as a finite ``Decimal``; floats are refused so that money stays exact."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise TypeError(f"{name} must be a Decimal, an int or a decimal string, not {type(value).__name__}")
    try:
        out = Decimal(value)
    except ArithmeticError as exc:
        raise ValueError(f"{name} is not a number: {value!r}") from exc
    if not out.is_finite():
        raise ValueError(f"{name} must be finite, not {value!r}")
    return out


def _div(numerator: Decimal, denominator: Decimal) -> Decimal:
    """``numerator / denominator`` correctly rounded once at :data:`PRECISION` digits."""
    with localcontext() as ctx:
        ctx.prec = PRECISION
        return numerator / denominator


def _shown(value: Decimal | None, places: int) -> str:
    return "n/a" if value is None else f"{value:,.{places}f}"


@dataclass(frozen=True)
class ROIFigures:
    """Benefit, fully loaded cost and the figures derived from them (Phillips level 5).

    Attributes
    ----------
    benefit, cost, net_benefit
        Money, exact.
    roi_pct
        Net benefit / cost × 100, one correctly rounded division (not rounded for display).
    benefit_cost_ratio
        Benefit / cost.
    payback_months
        Months for the benefit to repay the cost, assuming the benefit accrues evenly over
        ``months_of_benefit``; ``None`` when the benefit is not positive (it never pays back).
    months_of_benefit
        The period the benefit was measured or forecast over.
    """

    benefit: Decimal
    cost: Decimal
    net_benefit: Decimal
    roi_pct: Decimal
    benefit_cost_ratio: Decimal
    payback_months: Decimal | None
    months_of_benefit: Decimal

    def asdict(self) -> dict[str, str | None]:
        """A JSON-ready dictionary; numbers as exact decimal strings."""
        return {k: None if v is None else str(v) for k, v in asdict(self).items()}

    def __str__(self) -> str:
        rows = [
            ("benefit", _shown(self.benefit, 2)),
            ("cost (fully loaded)", _shown(self.cost, 2)),
            ("net benefit", _shown(self.net_benefit, 2)),
            ("ROI %", _shown(self.roi_pct, 1)),
            ("benefit-cost ratio", _shown(self.benefit_cost_ratio, 2)),
            (f"payback (months, over {self.months_of_benefit})", _shown(self.payback_months, 1)),
        ]
        width = max(len(label) for label, _ in rows)
        return "\n".join(f"{label:<{width}}  {text:>18}" for label, text in rows)


def roi(benefit: Amount, cost: Amount, *, months_of_benefit: Amount = 12) -> ROIFigures:
    """ROI figures of a benefit against a fully loaded cost.

    Parameters
    ----------
    benefit
        Monetised benefit (after isolation and margin) over ``months_of_benefit``.
    cost
        Fully loaded cost; must be positive, since ROI is a return *per unit of cost*.
    months_of_benefit
        The period the benefit covers, for the payback figure.

    Raises
    ------
    ValueError
        When ``cost`` ≤ 0 or ``months_of_benefit`` ≤ 0.

    Examples
    --------
    >>> f = roi(50_000, 20_000)
    >>> f.net_benefit, f.roi_pct, f.benefit_cost_ratio, f.payback_months
    (Decimal('30000'), Decimal('150'), Decimal('2.5'), Decimal('4.8'))
    """
    b = _dec(benefit, "benefit")
    c = _dec(cost, "cost")
    months = _dec(months_of_benefit, "months_of_benefit")
    if c <= 0:
        raise ValueError(f"cost must be positive to compute an ROI, got {c}")
    if months <= 0:
        raise ValueError(f"months_of_benefit must be positive, got {months}")
    with localcontext() as ctx:
        # Sums and scalings of money must be exact: trap rather than round silently.
        ctx.prec = 10 * PRECISION
        ctx.traps[Inexact] = True
        net = b - c
        net_x100 = net * 100
        cost_x_months = c * months
    return ROIFigures(
        benefit=b,
        cost=c,
        net_benefit=net,
        roi_pct=_div(net_x100, c),
        benefit_cost_ratio=_div(b, c),
        # cost / (benefit / months) as one division, so it is rounded once only.
        payback_months=_div(cost_x_months, b) if b > 0 else None,
        months_of_benefit=months,
    )


@dataclass(frozen=True)
class SeedModel:
    """Every figure of the seed article's spreadsheet, and the ROI figures it leads to.

    ``raw_lift`` is post − baseline conversion; ``adjusted_lift`` is the lift after the control
    group, which is the one credited. Rates are fractions (0.08 for 8 %).
    """

    baseline_conversion: Decimal
    post_conversion: Decimal
    raw_lift: Decimal
    adjusted_lift: Decimal
    opportunities: int | None
    average_deal_size: Decimal | None
    pipeline_value: Decimal
    incremental_revenue: Decimal
    gross_margin: Decimal
    benefit: Decimal
    figures: ROIFigures

    def asdict(self) -> dict[str, Any]:
        """A JSON-ready dictionary; numbers as exact decimal strings."""
        out: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if key == "figures":
                out[key] = self.figures.asdict()
            else:
                out[key] = value if value is None or isinstance(value, int) else str(value)
        return out

    def __str__(self) -> str:
        rows = [
            ("baseline conversion", f"{self.baseline_conversion:.2%}"),
            ("post conversion", f"{self.post_conversion:.2%}"),
            ("lift (raw)", f"{self.raw_lift:.2%}"),
            ("lift (adjusted, credited)", f"{self.adjusted_lift:.2%}"),
            ("pipeline value", _shown(self.pipeline_value, 2)),
            ("incremental revenue", _shown(self.incremental_revenue, 2)),
            ("gross margin", f"{self.gross_margin:.0%}"),
        ]
        width = max(len(label) for label, _ in rows)
        head = "\n".join(f"{label:<{width}}  {text:>18}" for label, text in rows)
        return f"{head}\n{self.figures}\n(seed formula: lift × pipeline value; ignores changes in deal size)"


def seed_model(
    *,
    baseline_conversion: Amount,
    post_conversion: Amount,
    adjusted_lift: Amount,
    total_cost: Amount,
    opportunities: int | None = None,
    average_deal_size: Amount | None = None,
    pipeline_value: Amount | None = None,
    gross_margin: Amount = 1,
    months_of_benefit: Amount = 12,
) -> SeedModel:
    """The seed article's model, exactly: incremental revenue = adjusted lift × pipeline value.

    pipeline value = opportunities × average deal size (or given directly);
    incremental revenue = adjusted lift × pipeline value; benefit = incremental revenue × gross
    margin; then :func:`roi` against ``total_cost``.

    Caveat (the seed's own): this formula ignores any change in deal size —
    it credits only the conversion lift, applied to the pipeline at its current value, so a
    program that raises deal sizes is undervalued. It is kept, labelled, to reproduce the seed's
    spreadsheet; the product also estimates incremental revenue directly on won revenue per unit
    and period, and shows how the two differ.

    Parameters
    ----------
    baseline_conversion, post_conversion
        Conversion rates before and after the program (fractions); reported, not credited.
    adjusted_lift
        The lift after adjustment with the control group: the one credited.
    total_cost
        Fully loaded cost of the program.
    opportunities, average_deal_size
        Opportunities influenced in the window and their average amount; give both, or give
        ``pipeline_value`` instead.
    pipeline_value
        The pipeline value directly. When given together with the two above, they must agree.
    gross_margin
        Fraction of revenue that is benefit (1 reproduces the seed, which credits revenue).
    months_of_benefit
        The attribution window in months, for the payback figure.

    Examples
    --------
    >>> m = seed_model(baseline_conversion="0.08", post_conversion="0.11", adjusted_lift="0.02",
    ...                opportunities=50, average_deal_size=10_000, total_cost=16_000)
    >>> m.pipeline_value, m.incremental_revenue, m.figures.roi_pct
    (Decimal('500000'), Decimal('10000.00'), Decimal('-37.50'))
    """
    baseline = _dec(baseline_conversion, "baseline_conversion")
    post = _dec(post_conversion, "post_conversion")
    lift = _dec(adjusted_lift, "adjusted_lift")
    margin = _dec(gross_margin, "gross_margin")
    if not 0 <= margin <= 1:
        raise ValueError(f"gross_margin must be between 0 and 1, got {margin}")
    size = None if average_deal_size is None else _dec(average_deal_size, "average_deal_size")
    if (opportunities is None) != (size is None):
        raise ValueError("give opportunities and average_deal_size together (or pipeline_value alone)")
    if opportunities is not None and opportunities < 0:
        raise ValueError(f"opportunities must not be negative, got {opportunities}")
    with localcontext() as ctx:
        ctx.prec = 10 * PRECISION  # products of a few money amounts and rates stay exact
        ctx.traps[Inexact] = True
        derived = None if size is None or opportunities is None else opportunities * size
        if pipeline_value is not None:
            pipeline = _dec(pipeline_value, "pipeline_value")
            if derived is not None and derived != pipeline:
                raise ValueError(
                    f"pipeline_value {pipeline} differs from opportunities × average_deal_size = {derived}"
                )
        elif derived is not None:
            pipeline = derived
        else:
            raise ValueError("give pipeline_value, or opportunities and average_deal_size")
        incremental = lift * pipeline
        benefit = incremental * margin
        raw = post - baseline
    return SeedModel(
        baseline_conversion=baseline,
        post_conversion=post,
        raw_lift=raw,
        adjusted_lift=lift,
        opportunities=opportunities,
        average_deal_size=size,
        pipeline_value=pipeline,
        incremental_revenue=incremental,
        gross_margin=margin,
        benefit=benefit,
        figures=roi(benefit, total_cost, months_of_benefit=months_of_benefit),
    )


@dataclass(frozen=True)
class Credit:
    """The lift credited to the program, and why.

    Attributes
    ----------
    credited
        The lift to value: the estimate, or 0 when it is not credited.
    estimate
        The lift as estimated.
    relative_change
        ``estimate / baseline``.
    is_credited
        Whether the estimate was credited.
    reason
        The decision in words, for the report.
    """

    credited: float
    estimate: float
    relative_change: float
    is_credited: bool
    reason: str

    @property
    def why(self) -> str:
        """The reason without its "credited:" / "not credited:" prefix, to follow a verdict."""
        return self.reason.split(": ", 1)[-1]


def conservative_credit(
    lift: float, baseline: float, *, min_relative_change: float, interval: tuple[float, float],
    describe: Callable[[float], str] = "{:.4g}".format,
) -> Credit:
    """The lift to credit under the product's conservative rules.

    A lift is credited only when both hold:

    * its relative change ``|lift / baseline|`` reaches ``min_relative_change`` (the study's
      threshold, e.g. 0.05: the seed asks for a >5 % change before crediting training);
    * its interval ``(lo, hi)`` excludes 0, i.e. the sign of the effect is established.

    Otherwise 0 is credited. A negative lift that passes both tests is credited as it is: hiding
    an established harm would overstate the program.

    Parameters
    ----------
    lift
        The estimated (control-adjusted) lift, in the KPI's units.
    baseline
        The KPI's baseline level; must be positive, since the change is relative to it.
    min_relative_change
        Threshold on ``|lift / baseline|``; not negative.
    interval
        The lift's confidence interval ``(lo, hi)``, ``lo ≤ hi``.
    describe
        How the reason writes an effect (e.g. in percentage points); default 4 significant digits.

    Examples
    --------
    >>> conservative_credit(0.02, 0.08, min_relative_change=0.05, interval=(0.005, 0.035)).credited
    0.02
    """
    if not baseline > 0:
        raise ValueError(f"baseline must be positive to judge a relative change, got {baseline}")
    if not min_relative_change >= 0:
        raise ValueError(f"min_relative_change must not be negative, got {min_relative_change}")
    lo, hi = interval
    if not lo <= hi:
        raise ValueError(f"interval must be (lo, hi) with lo ≤ hi, got {interval}")
    relative = lift / baseline
    reasons = []
    if abs(relative) < min_relative_change:
        reasons.append(
            f"the relative change {signed_share(relative)} is under the threshold of {min_relative_change:.1%}"
        )
    if lo <= 0 <= hi:
        reasons.append(f"the interval from {describe(lo)} to {describe(hi)} includes zero")
    if reasons:
        return Credit(0.0, lift, relative, False, "not credited: " + " and ".join(reasons))
    return Credit(
        lift,
        lift,
        relative,
        True,
        f"credited: the relative change {signed_share(relative)} reaches the threshold of {min_relative_change:.1%} "
        f"and the interval from {describe(lo)} to {describe(hi)} excludes zero",
    )


# --- intervals -----------------------------------------------------------------------------------

#: Percentiles are order statistics (NumPy's ``inverted_cdf``): a percentile is one of the
#: replicates, so for any increasing figure f, percentile(f(x)) is exactly f(percentile(x)).
PERCENTILE_METHOD: Final = "inverted_cdf"


def _replicates(values: ArrayLike) -> NDArray[np.float64]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError("replicates must be a non-empty one-dimensional array")
    if not np.all(np.isfinite(arr)):
        raise ValueError("replicates must be finite")
    return arr


def _check_value_inputs(pipeline_value: float, cost: float, margin: float, confidence: float) -> None:
    if not pipeline_value >= 0:
        raise ValueError(f"pipeline_value must not be negative, got {pipeline_value}")
    if not cost > 0:
        raise ValueError(f"cost must be positive to compute an ROI, got {cost}")
    if not 0 <= margin <= 1:
        raise ValueError(f"margin must be between 0 and 1, got {margin}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")


def percentile_interval(replicates: ArrayLike, confidence: float = 0.95) -> tuple[float, float]:
    """The equal-tailed percentile interval of bootstrap replicates.

    Uses order statistics (:data:`PERCENTILE_METHOD`) so that the interval of any increasing
    function of the replicates is that function applied to this interval.
    """
    arr = _replicates(replicates)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    tail = (1 - confidence) / 2
    lo, hi = np.quantile(arr, [tail, 1 - tail], method=PERCENTILE_METHOD)
    return float(lo), float(hi)


def roi_pct_from_lift(
    lift: ArrayLike, pipeline_value: float, cost: float, margin: float = 1.0
) -> NDArray[np.float64]:
    """ROI % for each lift (vectorised floats): (lift × pipeline × margin − cost) / cost × 100.

    Each operation is increasing in ``lift`` (pipeline value, margin and cost are not
    negative), and floating-point rounding is monotone, so the result is non-decreasing in
    ``lift`` exactly, not only in exact arithmetic.
    """
    arr = np.asarray(lift, dtype=np.float64)
    benefit = arr * pipeline_value * margin
    out: NDArray[np.float64] = (benefit - cost) / cost * 100.0
    return out


@dataclass(frozen=True)
class ValueIntervals:
    """Percentile intervals of the lift and of the money figures it drives (floats).

    Each money interval is the figure evaluated at the lift's interval bounds, which equals the
    percentile interval of the figure over the replicates because every figure is increasing in
    the lift.
    """

    confidence: float
    lift: tuple[float, float]
    incremental_revenue: tuple[float, float]
    benefit: tuple[float, float]
    roi_pct: tuple[float, float]


def value_intervals(
    lift_replicates: ArrayLike,
    pipeline_value: float,
    cost: float,
    margin: float = 1.0,
    confidence: float = 0.95,
) -> ValueIntervals:
    """Intervals of incremental revenue, benefit and ROI % from bootstrap replicates of the lift.

    Parameters
    ----------
    lift_replicates
        Bootstrap replicates of the control-adjusted lift.
    pipeline_value
        Pipeline value the lift applies to (the seed's model).
    cost
        Fully loaded cost (positive).
    margin
        Gross margin, between 0 and 1.
    confidence
        Coverage of the equal-tailed interval.
    """
    _check_value_inputs(pipeline_value, cost, margin, confidence)
    return value_intervals_from_lift(percentile_interval(lift_replicates, confidence), pipeline_value, cost,
                                     margin, confidence)


def value_intervals_from_lift(
    lift_interval: tuple[float, float],
    pipeline_value: float,
    cost: float,
    margin: float = 1.0,
    confidence: float = 0.95,
) -> ValueIntervals:
    """Intervals of incremental revenue, benefit and ROI % from the lift's own interval.

    Each is an increasing function of the lift, so the lift interval's ends map to theirs: this
    serves estimators whose interval is analytic (no bootstrap replicates) as well as bootstrap
    ones.
    """
    _check_value_inputs(pipeline_value, cost, margin, confidence)
    bounds = np.array(lift_interval, dtype=np.float64)
    revenue = bounds * pipeline_value
    benefit = revenue * margin
    roi_pct = roi_pct_from_lift(bounds, pipeline_value, cost, margin)

    def pair(a: NDArray[np.float64]) -> tuple[float, float]:
        return float(a[0]), float(a[1])

    return ValueIntervals(confidence, pair(bounds), pair(revenue), pair(benefit), pair(roi_pct))


def roi_interval(
    lift_replicates: ArrayLike,
    pipeline_value: float,
    cost: float,
    margin: float = 1.0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """The percentile interval of ROI % implied by bootstrap replicates of the lift.

    Examples
    --------
    >>> roi_interval([0.01, 0.02, 0.03], 500_000.0, 16_000.0, confidence=0.5)
    (-68.75, -6.25)
    """
    return value_intervals(lift_replicates, pipeline_value, cost, margin, confidence).roi_pct
