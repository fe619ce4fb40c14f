"""Units' attributes as covariates: what the covariate-aware designs compare like with like on.

A difference-in-differences without covariates assumes trained and untrained units would have
trended alike; when the trained come mostly from one region, segment or role whose market moves
differently, that is false, and the doubly robust DiD and the matched comparisons need the
attribute. A study names them (``isolation.covariates``); this module reads them from the CRM's
users (reps) or accounts and returns one numeric column per covariate — a categorical attribute
as 0/1 indicators, one per value but the most common (the reference), so a model with an
intercept stays identified.

The attributes are those the canonical tables carry (:data:`ATTRIBUTES`). They are read as they
are in the export, so an attribute that training itself changes (a title after a promotion)
should not be named.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl
from ibis.backends import BaseBackend

__all__ = ["ATTRIBUTES", "Attribute", "unit_covariates", "unknown_attributes"]


@dataclass(frozen=True)
class Attribute:
    """A unit attribute a study may name as a covariate: its table column and whether it is a number."""

    column: str
    numeric: bool


ATTRIBUTES: dict[str, dict[str, Attribute]] = {
    "rep": {
        "role": Attribute("role_id", False),  # the CRM role (UserRoleId): often one per region or team
        "department": Attribute("department", False),
        "title": Attribute("title", False),
        "manager": Attribute("manager_id", False),  # ManagerId
    },
    "account": {
        "type": Attribute("type", False),  # customer, prospect, partner, …
        "industry": Attribute("industry", False),
        "billing_country": Attribute("billing_country", False),
        "billing_state": Attribute("billing_state", False),
        "employees": Attribute("employees", True),
        "annual_revenue": Attribute("annual_revenue", True),
    },
}
"""The covariates a study may name, by unit (``rep`` reads ``crm_user``, ``account`` reads ``crm_account``)."""


def unknown_attributes(unit: str, names: Sequence[str]) -> list[str]:
    """The ``names`` that are not attributes of a ``unit`` (``rep`` or ``account``)."""
    known = ATTRIBUTES[unit]
    return [n for n in names if n not in known]

_TABLE = {"rep": ("crm_user", "user_id"), "account": ("crm_account", "account_id")}
_MISSING = "(missing)"


def _name(attribute: str, value: str) -> str:
    return f"{attribute}={value}"


def unit_covariates(con: BaseBackend, unit: str, names: Sequence[str],
                    units: Sequence[str] | None = None) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """The units' covariates ``names``: a frame with ``unit`` and one numeric column per covariate column.

    Returns the frame and the covariate columns' names in order. A categorical attribute becomes
    indicators named ``attribute=value``, one per value but the most common (ties: the first in
    sort order), an empty value counting as a value of its own (``(missing)``); a numeric one
    stays a number, and a unit without it takes the mean of the others (the share of such units
    is small in practice; a study that needs better should name another attribute). With
    ``units`` (the panel's), values and the reference are those of these units only, and a value
    none of them has makes no column.

    Raises
    ------
    ValueError
        An unknown unit or attribute (the message lists the ones there are).
    """
    if unit not in ATTRIBUTES:
        raise ValueError(f"unit {unit!r}: covariates are known for {', '.join(ATTRIBUTES)}")
    known = ATTRIBUTES[unit]
    unknown = unknown_attributes(unit, names)
    if unknown:
        raise ValueError(f"unknown covariate {', '.join(repr(n) for n in unknown)} for {unit}s: expected one of "
                         f"{', '.join(known)}")
    table, key = _TABLE[unit]
    t = con.table(table)
    columns = [known[n].column for n in dict.fromkeys(names)]
    raw = t.select(t[key].name("unit"), *(t[c] for c in columns)).to_pyarrow()
    frame = pl.from_arrow(raw)
    assert isinstance(frame, pl.DataFrame)
    if units is not None:
        frame = pl.DataFrame({"unit": list(units)}, schema={"unit": pl.String}).join(
            frame.with_columns(pl.col("unit").cast(pl.String)), on="unit", how="left", maintain_order="left")
    out = frame.select(pl.col("unit").cast(pl.String))
    made: list[str] = []
    for n in dict.fromkeys(names):
        a = known[n]
        if a.numeric:
            values = frame[a.column].cast(pl.Float64)
            out = out.with_columns(values.fill_null(values.mean()).fill_null(0.0).alias(n))
            made.append(n)
            continue
        values = frame[a.column].cast(pl.String).fill_null(_MISSING).replace("", _MISSING)
        counts = values.value_counts(sort=False).sort(["count", a.column], descending=[True, False])
        levels = counts[a.column].to_list()
        for level in sorted(levels[1:]):
            col = _name(n, level)
            out = out.with_columns((values == level).cast(pl.Float64).alias(col))
            made.append(col)
    return out, tuple(made)
