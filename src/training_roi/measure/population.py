"""Who a study measures: the units of its population, from the CRM."""

from __future__ import annotations

from collections.abc import Sequence

from ibis.backends import BaseBackend

__all__ = ["population_units"]


def population_units(
    con: BaseBackend,
    *,
    unit: str = "rep",
    roles: Sequence[str] = (),
    departments: Sequence[str] = (),
    titles: Sequence[str] = (),
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> list[str] | None:
    """The units (CRM users, or accounts) a population names, or None for every unit with deals.

    Reps are chosen by role, department and title (all that apply), then ``include`` adds and
    ``exclude`` removes ids; with no filter, everyone who owns deals is in, minus ``exclude``.
    Accounts are chosen by list only.
    """
    if not (roles or departments or titles or include or exclude):
        return None
    o = con.table("crm_opportunity")
    if unit == "account":
        accounts = set(o.select("account_id").distinct().to_pyarrow()["account_id"].to_pylist()) - {None}
        return sorted((accounts | set(include)) - set(exclude))
    users = con.table("crm_user")
    keep = users.user_id.notnull()
    if roles:
        keep &= users.role_id.isin(list(roles))
    if departments:
        keep &= users.department.isin(list(departments))
    if titles:
        keep &= users.title.isin(list(titles))
    chosen = set(users.filter(keep).select("user_id").to_pyarrow()["user_id"].to_pylist())
    if not (roles or departments or titles):  # no filter: everyone who owns deals, then the lists
        chosen |= set(o.select("owner_id").distinct().to_pyarrow()["owner_id"].to_pylist()) - {None}
    chosen |= set(include)
    chosen -= set(exclude)
    return sorted(chosen)
