"""One voice for every figure the product words: money, percentages, points, KPI values and changes.

Users read $1,234,567 (a true minus sign: −$1,234), percentages with one decimal (−37.5%), a
change of a rate in percentage points (+2.0 pts), and "—" where a value is undefined. These
helpers sit below every stage, so that measure/, value/ and evaluation/ can word a message the same
way the presenters print a table, without importing upward.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from decimal import ROUND_HALF_UP, Decimal
from functools import cache

import polars as pl

__all__ = ["chart_money", "current_style", "describe", "describe_change", "describe_value", "money", "number_style",
           "percent", "plural", "points", "probability", "relative", "share", "spreadsheet_safe", "true_minus"]

_Number = float | int | Decimal


_DEFAULT_STYLE = ("USD", "en_US")
_STYLE: ContextVar[tuple[str, str]] = ContextVar("number_style", default=_DEFAULT_STYLE)


def current_style() -> tuple[str, str]:
    """The currency and locale money and percentages are worded in here (see :func:`number_style`)."""
    return _STYLE.get()


@contextmanager
def number_style(currency: str = "USD", locale: str = "en_US") -> Iterator[None]:
    """Word money and percentages in ``currency`` and ``locale`` (a CLDR locale such as ``de_DE``) inside the block.

    A study's answer is presented inside its own style; outside any block, U.S. conventions.
    """
    token = _STYLE.set((currency, locale))
    try:
        yield
    finally:
        _STYLE.reset(token)


@cache
def _money_pattern(locale: str) -> str:
    """The locale's currency pattern without its decimals (amounts are shown in whole units)."""
    from babel import Locale

    pattern = Locale.parse(locale).currency_formats["standard"].pattern.split(";")[0]
    return re.sub(r"\.0+", "", pattern)


def money(value: _Number) -> str:
    """Money as users write it: $1,234,567 (negative as −$1,234); in a :func:`number_style`, its locale's way."""
    amount = float(value)
    if not math.isfinite(amount):  # a replicate that could not be computed: said as it is, never a number
        return f"{'−' if amount < 0 else ''}${abs(amount):,.0f}"
    style = _STYLE.get()
    whole = round(abs(amount))
    sign = "−" if amount < 0 and whole else ""
    if style == _DEFAULT_STYLE:
        return f"{sign}${whole:,}"
    from babel.numbers import format_currency

    currency, locale = style
    return sign + format_currency(whole, currency, format=_money_pattern(locale), locale=locale,
                                  currency_digits=False)


def chart_money() -> str:
    """The d3 format of money on a chart's axis: ``$,.0f`` in U.S. dollars, else plain grouped units."""
    return "$,.0f" if _STYLE.get()[0] == "USD" else ",.0f"


def percent(value: _Number) -> str:
    """A percentage figure (ROI %) with one decimal, ties away from zero, and a true minus sign: −37.5%.

    Rounded as the product rounds every figure (``ROUND_HALF_UP``), so 12.25 reads 12.3% here as in
    the tables computed to one decimal.
    """
    if value != value or value in (float("inf"), float("-inf")):
        return f"{float(value):,.1f}%"
    rounded = Decimal(repr(value) if isinstance(value, float) else str(value)).quantize(Decimal("0.1"), ROUND_HALF_UP)
    locale = _STYLE.get()[1]
    if locale == "en_US":
        return f"{rounded:,.1f}%".replace("-", "−")
    from babel.numbers import format_decimal

    return format_decimal(rounded, format="#,##0.0", locale=locale).replace("-", "−") + "%"


def points(rate_change: float) -> str:
    """A change of a rate in percentage points with one decimal and a true minus sign: +2.0 pts, −6.4 pts."""
    return describe_change(rate_change, "rate")


def relative(fraction: float | None) -> str:
    """A relative change (a fraction: 0.083) as a signed percentage with one decimal: +8.3%, −4.7%."""
    if fraction is None or fraction != fraction:
        return "—"
    shown = percent(fraction * 100)
    if shown in ("0.0%", "−0.0%"):
        return "0.0%"
    return shown if shown.startswith("−") else "+" + shown


def probability(p: float | None) -> str:
    """A probability (a fraction: 0.963) as a percentage with one decimal: 96.3%; "—" when undefined."""
    return "—" if p is None or p != p else percent(p * 100)


def plural(n: int, noun: str, many: str | None = None) -> str:
    """A count and its noun, singular for one: "1 rep", "2 reps", "3 categories" (``many`` when not noun + s)."""
    return f"{n:,} {noun if n == 1 else (many or noun + 's')}"


_SIGNING_HYPHEN = re.compile(r"(?<![\w.\-])-(?=\$?\d)")


def duration(seconds: float | None) -> str:
    """A lag in the largest unit that keeps it readable: 42 s, 17 min, 5.2 h, 3.0 d (empty when unknown)."""
    if seconds is None:
        return ""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def true_minus(text: str) -> str:
    """``text`` with every ASCII hyphen that signs a number (-0.3, -$1,234) set as a true minus sign (−).

    Estimators word their notes for logs and notebooks ("interval -0.0123 to +0.0456"); an output
    a person reads sets them as every other figure. A hyphen inside a word, a date (2025-03-22) or
    an option (--method) is left as it is.
    """
    return _SIGNING_HYPHEN.sub("−", text)


def share(part: int, whole: int) -> str:
    """``part`` as a share of ``whole`` with one decimal, or an em dash when ``whole`` is zero."""
    return f"{part / whole:.1%}" if whole else "—"


def describe_value(value: float | None, unit: str) -> str:
    """A sales KPI level as users read it: 12.3% (rate), $1,234 (money), 45.2 days (days)."""
    return describe(value, unit)


def describe_change(value: float | None, unit: str) -> str:
    """A change of a KPI: +2.0 pts (rate), +$1,234 (money), −3.1 days (days)."""
    if value is None or value != value:
        return "—"
    sign = "−" if value < 0 else "+"
    if unit == "rate":
        return f"{sign}{abs(value) * 100:.1f} pts"
    if unit == "money":
        return f"{sign}${abs(value):,.0f}"
    return f"{sign}{abs(value):,.1f} days"


def describe(value: float | None, unit: str) -> str:
    """A catalogue KPI value as people read it: 12.3% (rate), $1,234 (money), 4.5 hours, 3.0 (score)."""
    if value is None or value != value:
        return "—"
    sign = "−" if value < 0 else ""
    if unit == "rate":
        return f"{sign}{abs(value):.1%}"
    if unit in ("money", "money/day"):
        return f"{sign}${abs(value):,.0f}" + ("/day" if unit == "money/day" else "")
    suffix = f" {unit}" if unit in ("days", "hours", "minutes") else ""
    return f"{sign}{abs(value):,.1f}{suffix}"


_FORMULA_START = r"^[=+\-@\t\r]"
_PLAIN_NUMBER = r"^[+\-]?(\d+\.?\d*|\.\d+)([eE][+\-]?\d+)?$"


def spreadsheet_safe(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with every text cell that a spreadsheet would run as a formula made inert.

    A cell beginning with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is what Excel,
    LibreOffice and Google Sheets evaluate (``=HYPERLINK(…)`` in a rep's name becomes a live link
    when the CSV is opened). As OWASP's CSV-injection guidance says, such cells are prefixed with a
    single quote, which spreadsheets show but do not evaluate. Numbers written as text (``-1234.50``)
    are left as they are, so figures stay figures. Categorical columns are read as their text; one
    with such a cell comes back as text.
    """
    text = [c for c, dtype in frame.schema.items() if dtype == pl.String]
    if text:  # only the columns with a cell that starts like a formula are rewritten
        starts = frame.select(pl.col(text).str.contains(_FORMULA_START).any()).row(0)
        text = [c for c, found in zip(text, starts, strict=True) if found]
    # A categorical column's few distinct values are checked, not its millions of cells.
    coded = [c for c, dtype in frame.schema.items() if isinstance(dtype, pl.Categorical | pl.Enum)
             and frame[c].unique().cast(pl.String).str.contains(_FORMULA_START).any()]
    if not text and not coded:
        return frame
    return frame.with_columns(_inert(c) for c in (*text, *coded))


def _inert(column: str) -> pl.Expr:
    """``column`` as text, each cell that starts like a formula (and is no number) behind a quote."""
    cell = pl.col(column).cast(pl.String)
    formula = cell.str.contains(_FORMULA_START) & ~cell.str.contains(_PLAIN_NUMBER)
    return pl.when(formula).then(pl.lit("'") + cell).otherwise(cell).alias(column)
