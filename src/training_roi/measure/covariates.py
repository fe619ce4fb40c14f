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

import numpy as np
import polars as pl
from ibis.backends import BaseBackend

__all__ = ["ATTRIBUTES", "Attribute", "unit_covariates", "unit_labels", "unknown_attributes"]


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
    frame = _attributes(con, unit, names, units, "covariate")
    known = ATTRIBUTES[unit]
    out = frame.select(pl.col("unit").cast(pl.String))
    made: list[str] = []
    for n in dict.fromkeys(names):
        a = known[n]
        if a.numeric:
            values = frame[n].cast(pl.Float64)
            out = out.with_columns(values.fill_null(values.mean()).fill_null(0.0).alias(n))
            made.append(n)
            continue
        values = frame[n].cast(pl.String).fill_null(_MISSING).replace("", _MISSING)
        counts = values.value_counts(sort=False).sort(["count", n], descending=[True, False])
        levels = counts[n].to_list()
        for level in sorted(levels[1:]):
            col = _name(n, level)
            out = out.with_columns((values == level).cast(pl.Float64).alias(col))
            made.append(col)
    return out, tuple(made)


def unit_labels(con: BaseBackend, unit: str, names: Sequence[str], units: Sequence[str]) -> pl.DataFrame:
    """The ``units``' attributes ``names`` as text labels to group them by: ``unit`` and one column per name.

    A categorical attribute keeps its values (an empty or absent one is ``(missing)``; a manager is
    named, ``Dana Lee (005…)``, the id kept so that two managers of one name stay apart); a numeric
    one becomes thirds of its values among ``units`` (``under 120``, ``120 to 480``, ``480 and
    over``), since a group per distinct headcount would hold one unit each.

    Raises
    ------
    ValueError
        An unknown unit or attribute (the message lists the ones there are).
    """
    frame = _attributes(con, unit, names, units, "attribute")
    known = ATTRIBUTES[unit]
    out = frame.select("unit")
    for n in dict.fromkeys(names):
        if known[n].numeric:
            values = frame[n].cast(pl.Float64)
            known_values = values.drop_nulls()
            if known_values.len() >= 3:
                lo, hi = (float(np.quantile(known_values.to_numpy(), q)) for q in (1 / 3, 2 / 3))
                thirds = [_MISSING if v is None else f"under {lo:,.0f}" if v < lo
                          else f"{lo:,.0f} to {hi:,.0f}" if v < hi else f"{hi:,.0f} and over" for v in values]
                out = out.with_columns(pl.Series(n, thirds, dtype=pl.String))
            else:
                out = out.with_columns(values.cast(pl.String).fill_null(_MISSING).alias(n))
            continue
        values = frame[n].cast(pl.String).fill_null(_MISSING).replace("", _MISSING)
        if unit == "rep" and n == "manager":
            values = _people_names(con, values)
        out = out.with_columns(values.alias(n))
    return out


def _attributes(con: BaseBackend, unit: str, names: Sequence[str], units: Sequence[str] | None,
                word: str) -> pl.DataFrame:
    """``unit`` (text) and one column per attribute of ``names`` as the export has it, for ``units`` when given.

    ``word`` names the attributes in the error (``covariate``, ``attribute``).

    Raises
    ------
    ValueError
        An unknown unit or attribute (the message lists the ones there are).
    """
    if unit not in ATTRIBUTES:
        raise ValueError(f"unit {unit!r}: {word}s are known for {', '.join(ATTRIBUTES)}")
    known = ATTRIBUTES[unit]
    unknown = unknown_attributes(unit, names)
    if unknown:
        raise ValueError(f"unknown {word} {', '.join(repr(n) for n in unknown)} for {unit}s: expected one of "
                         f"{', '.join(known)}")
    table, key = _TABLE[unit]
    t = con.table(table)
    chosen = list(dict.fromkeys(names))
    frame = pl.from_arrow(t.select(t[key].cast("string").name("unit"),
                                   *(t[known[n].column].name(n) for n in chosen)).to_pyarrow())
    assert isinstance(frame, pl.DataFrame)
    if units is None:
        return frame
    return pl.DataFrame({"unit": list(units)}, schema={"unit": pl.String}).join(
        frame.unique("unit", keep="first", maintain_order=True), on="unit", how="left", maintain_order="left")


def _people_names(con: BaseBackend, ids: pl.Series) -> pl.Series:
    """CRM user ids as ``Name (id)`` where the export names the user, else the id as it is."""
    users = con.table("crm_user")
    named = pl.from_arrow(users.select(users.user_id.cast("string").name("id"), users.name).to_pyarrow())
    assert isinstance(named, pl.DataFrame)
    lookup = dict(named.unique("id", keep="first").drop_nulls().iter_rows())
    return pl.Series(ids.name, [f"{lookup[i]} ({i})" if lookup.get(i) else i for i in ids.to_list()], dtype=pl.String)

