"""UnitPanel at every grain, built from pandas, Polars or Arrow tables, and the checks that name what is wrong."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd
import polars as pl
import pytest

from training_roi.measure.grain import PeriodGrain, infer_grain
from training_roi.measure.panels import UnitPanel


def _number(grain: str, value: date | int, week_start: int = 0) -> int:
    return int(pl.select(PeriodGrain(grain, week_start).number(pl.lit(value))).item())


def test_period_numbers_by_hand():
    # 15 March 2024: month 2024·12 + 2, quarter 2024·4 + 0, year 2024, day 19797 since 1970-01-01.
    d = date(2024, 3, 15)
    assert _number("month", d) == 24290 and _number("quarter", d) == 8096 and _number("year", d) == 2024
    assert _number("day", d) == (d - date(1970, 1, 1)).days == 19797
    assert _number("index", 7) == 7
    # Weeks from Monday: 1970-01-05 (a Monday) opens week 1, so 2024-03-11 (Monday) opens week 2827
    # and the Friday after it is in the same week; from Sunday the Friday belongs with Sunday the 10th.
    assert _number("week", date(2024, 3, 11)) == _number("week", date(2024, 3, 15)) == (19793 - 4) // 7 + 1
    assert _number("week", date(2024, 3, 10)) == _number("week", date(2024, 3, 11)) - 1
    assert _number("week", date(2024, 3, 15), week_start=6) == _number("week", date(2024, 3, 10), week_start=6)
    # Consecutive periods differ by one, across a year's end.
    assert _number("month", date(2024, 1, 1)) - _number("month", date(2023, 12, 31)) == 1
    assert _number("quarter", date(2024, 1, 1)) - _number("quarter", date(2023, 10, 1)) == 1
    for grain in ("day", "week", "month", "quarter", "year"):
        g = PeriodGrain(grain)
        n = _number(grain, d)
        assert g.number_of(g.start(n)) == n and g.start(n) <= d < g.start(n + 1)  # type: ignore[operator]
    assert PeriodGrain("quarter").label(8096) == "2024Q1" and PeriodGrain("month").label(24290) == "2024-03"


@pytest.mark.parametrize(("values", "grain"), [
    ([date(2021, 1, 1), date(2022, 1, 1), date(2023, 1, 1)], "year"),
    ([date(2024, 1, 1), date(2024, 4, 1), date(2024, 10, 1)], "quarter"),
    ([date(2024, 3, 31), date(2024, 6, 30)], "quarter"),
    ([date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)], "month"),
    ([date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31)], "month"),
    ([date(2024, 1, 1), date(2024, 1, 8), date(2024, 1, 15)], "week"),
    ([date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3)], "day"),
    ([2019, 2020, 2021], "index"),
])
def test_grain_inferred_as_the_coarsest_that_separates_the_periods(values, grain):
    assert infer_grain(pl.Series(values)) == grain


def test_inference_needs_two_periods_and_dates_or_integers():
    with pytest.raises(ValueError, match="fewer than two distinct periods"):
        infer_grain(pl.Series([date(2024, 1, 1)] * 3))
    with pytest.raises(ValueError, match="expected dates"):
        infer_grain(pl.Series([1.5, 2.5]))


ROWS = {
    "rep id": ["b", "b", "b", "a", "a", "a", "c", "c", "c"],
    "when": [date(2022, 1, 1), date(2023, 1, 1), date(2024, 1, 1)] * 3,
    "sales": [5.0, 6.0, 9.0, 4.0, 4.5, 5.0, 3.0, None, 3.5],
    "deals": [2.0, 2.0, 3.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
    "trained": [date(2023, 6, 1)] * 3 + [None] * 6,
    "region": [1.0] * 3 + [0.0] * 6,
}


def test_from_data_accepts_pandas_polars_and_arrow_alike():
    polars = pl.DataFrame(ROWS)
    kwargs = {"unit": "rep id", "period": "when", "outcome": "sales", "treated_at": "trained",
              "covariates": ("region",), "denominator": "deals"}
    panels = [UnitPanel.from_data(data, **kwargs) for data in (polars, polars.to_pandas(), polars.to_arrow())]
    for p in panels:
        assert p.grain == "year" and (p.outcome, p.numerator, p.denominator) == ("sales", "sales", "deals")
        assert p.frame.columns == ["unit", "period", "treated_at", "sales", "deals", "region"]
        assert p.frame.schema["period"] == pl.Date and p.frame.schema["treated_at"] == pl.Date
        assert p.periods == [date(2022, 1, 1), date(2023, 1, 1), date(2024, 1, 1)]
        # Event time 0 is the year that holds the training (2023), as after training.
        events = p.frame.filter(pl.col("unit") == "b").select(p.event_time()).to_series().to_list()
        assert events == [-1, 0, 1]
        assert p.frame.drop("period", "treated_at").equals(panels[0].frame.drop("period", "treated_at"))
    # Pooled over the observed rows only: (5+6+9 + 4+4.5+5 + 3+3.5) / (2+2+3 + 1+1+1 + 1+1) = 40 / 12.
    assert panels[0].value() == pytest.approx(40 / 12) and panels[0].unobserved == 1
    # pandas turns the date column into datetimes and None into NaT: the panel reads them back as dates.
    stamped = polars.to_pandas().assign(when=lambda d: pd.to_datetime(d["when"]))
    assert UnitPanel.from_data(stamped, **kwargs).frame["period"].to_list() == panels[0].frame["period"].to_list()
    arrow = UnitPanel.from_arrow(panels[0].frame.to_arrow(), outcome="sales", numerator="sales", grain="year")
    assert arrow.frame.equals(panels[0].frame)


def test_integer_periods_are_the_index_grain():
    rows = pd.DataFrame({"rep": [1, 1, 2, 2], "year": [2023, 2024] * 2, "y": [1.0, 2.0, 3.0, 4.0],
                         "at": [2024, 2024, None, None]})  # pandas holds the missing year as NaN in floats
    p = UnitPanel.from_data(rows, unit="rep", period="year", outcome="y", treated_at="at")
    assert p.grain == "index" and p.frame.schema["treated_at"] == pl.Int64 and p.frame.schema["unit"] == pl.String
    assert p.units["treated_at"].to_list() == [2024, None]
    assert p.period_label(2024) == "2024" and p.period_start(2024) == 2024
    with pytest.raises(ValueError, match="grain='index'"):
        UnitPanel(frame=p.frame, outcome="y", numerator="y")  # integers at the default month grain


def test_errors_name_the_column_the_unit_and_the_period():
    data = pl.DataFrame(ROWS)
    kwargs = {"unit": "rep id", "period": "when", "outcome": "sales", "treated_at": "trained"}
    with pytest.raises(ValueError, match=r"no column 'revenue' \(outcome\); its columns are 'rep id', 'when'"):
        UnitPanel.from_data(data, **{**kwargs, "outcome": "revenue"})
    with pytest.raises(ValueError, match=r"'deal count' \(denominator\)"):
        UnitPanel.from_data(data, **kwargs, denominator="deal count")
    twice = pl.concat([data, data.filter((pl.col("rep id") == "a") & (pl.col("when") == date(2023, 1, 1)))])
    with pytest.raises(ValueError, match=r"unit 'a' has 2 rows in the year 2023: a panel has one row per unit and"):
        UnitPanel.from_data(twice, **kwargs)
    # Daily rows at the month grain are several rows in one month, not one month summed silently.
    daily = pl.DataFrame({"unit": ["u"] * 3, "period": [date(2024, 1, 1), date(2024, 1, 2), date(2024, 2, 1)],
                          "treated_at": [None] * 3, "y": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match=r"unit 'u' has 2 rows in the month 2024-01"):
        UnitPanel(frame=daily, outcome="y", numerator="y")
    moving = data.with_columns(pl.when((pl.col("rep id") == "b") & (pl.col("when") == date(2024, 1, 1)))
                               .then(pl.lit(date(2024, 3, 1))).otherwise(pl.col("trained")).alias("trained"))
    with pytest.raises(ValueError, match=r"treated_at is not constant within unit 'b': 2023-06-01, 2024-03-01"):
        UnitPanel.from_data(moving, **kwargs)
    with pytest.raises(ValueError, match="named for more than one role"):
        UnitPanel.from_data(data, **{**kwargs, "outcome": "when"})
    with pytest.raises(TypeError, match="a table with named columns"):
        UnitPanel.from_data(np.zeros((3, 3)), **kwargs)
    with pytest.raises(ValueError, match="every period is the first day of its week"):
        UnitPanel(frame=daily.with_columns(pl.col("period").dt.offset_by("1d")), outcome="y", numerator="y",
                  grain="week")


def test_datetimes_become_dates_and_weeks_start_on_the_panels_weekday():
    sundays = [datetime(2024, 3, 3, 9), datetime(2024, 3, 10, 9), datetime(2024, 3, 17, 9)]
    frame = pl.DataFrame({"unit": ["u"] * 3, "period": sundays, "treated_at": [date(2024, 3, 13)] * 3,
                          "y": [1.0, 2.0, 3.0]})
    p = UnitPanel(frame=frame, outcome="y", numerator="y", grain="week")
    # The Wednesday of training is in the week that starts on Sunday the 10th: event time 0 there.
    assert p.frame.select(p.event_time()).to_series().to_list() == [-1, 0, 1]
    assert p.frame.schema["period"] == pl.Date
    assert p.period_label(p.calendar.number_of(date(2024, 3, 13))) == "2024-03-10"
