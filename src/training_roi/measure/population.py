"""Who a study measures: the units of its population, from the CRM."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import polars as pl
from ibis.backends import BaseBackend

__all__ = ["employee_learners", "grain_names", "population_units", "rep_attributes", "team_ids", "unit_names"]


def population_units(
    con: BaseBackend,
    *,
    unit: str = "rep",
    roles: Sequence[str] = (),
    departments: Sequence[str] = (),
    titles: Sequence[str] = (),
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    accounts: Mapping[str, Sequence[str]] | None = None,
) -> list[str] | None:
    """The units (CRM users, or accounts) a population names, or None for every unit with deals.

    Reps are chosen by role, department and title (all that apply), then ``include`` adds and
    ``exclude`` removes ids; with no filter, everyone who owns deals is in, minus ``exclude``.
    Accounts are chosen by their fields (``accounts``: a ``crm_account`` column such as ``type``,
    ``industry`` or ``billing_country`` → the values to keep; all that apply), then the lists.
    """
    if not (roles or departments or titles or include or exclude or accounts):
        return None
    o = con.table("crm_opportunity")
    if unit == "account":
        if accounts:
            a = con.table("crm_account")
            keep = a.account_id.notnull()
            for column, values in accounts.items():
                keep &= a[column].isin(list(values))
            chosen = set(a.filter(keep).select("account_id").to_pyarrow()["account_id"].to_pylist())
        else:
            chosen = set(o.select("account_id").distinct().to_pyarrow()["account_id"].to_pylist()) - {None}
        return sorted((chosen | set(include)) - set(exclude))
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


def rep_attributes(con: BaseBackend, columns: Sequence[str]) -> pl.DataFrame:
    """Every CRM user's ``columns`` (``unit`` = the user id), to balance a randomised roll-out on.

    Raises
    ------
    ValueError
        A column that ``crm_user`` does not have (the message lists the columns it has).
    """
    users = con.table("crm_user")
    unknown = [c for c in columns if c not in users.columns]
    if unknown:
        raise ValueError(f"strata {', '.join(unknown)}: not a crm_user column (columns: {', '.join(users.columns)})")
    frame = pl.from_arrow(users.select("user_id", *columns).to_pyarrow())
    assert isinstance(frame, pl.DataFrame)
    return frame.rename({"user_id": "unit"})


def unit_names(con: BaseBackend, unit: str, units: Collection[str]) -> dict[str, tuple[str | None, str | None]]:
    """Each unit's contact handle and name: a rep's (email, name), or an account's (name, None)."""
    wanted = set(units)  # the user and account tables are small: filter here rather than in a long IN list
    if unit == "account":
        return {r["account_id"]: (r["name"], None)
                for r in con.table("crm_account").select("account_id", "name").to_pyarrow().to_pylist()
                if r["account_id"] in wanted}
    return {r["user_id"]: (r["email"], r["name"])
            for r in con.table("crm_user").select("user_id", "email", "name").to_pyarrow().to_pylist()
            if r["user_id"] in wanted}


_NAMED = {"rep": ("crm_user", "user_id", "name"), "team": ("crm_user", "user_id", "name"),
          "account": ("crm_account", "account_id", "name"),
          "activity": ("learning_record", "activity_id", "activity_name")}


def grain_names(con: BaseBackend, grain: str, ids: Collection[str]) -> dict[str, str]:
    """The name of each id of ``ids`` at ``grain`` that the warehouse knows.

    A rep's, an account's or a learning activity's name; for a team (the reps sharing a manager)
    "team of" its manager's name. Ids without a name are left out.
    """
    if grain not in _NAMED or _NAMED[grain][0] not in con.list_tables():
        return {}
    table, key, name = _NAMED[grain]
    t = con.table(table)
    t = t.filter(t[key].notnull() & t[name].notnull() & (t[name].strip() != ""))
    rows = t.group_by(i=t[key]).agg(n=t[name].min()).to_pyarrow().to_pylist()
    wanted = set(ids)
    return {r["i"]: (f"team of {r['n']}" if grain == "team" else r["n"]) for r in rows if r["i"] in wanted}


def team_ids(con: BaseBackend) -> list[str]:
    """Every team the warehouse knows, as the team grain keys it: each manager's CRM user id, sorted.

    A team is the reps sharing a manager, so the list does not depend on a KPI or a period: a
    team's place in it is the same whichever KPI a reader looks at.
    """
    if "crm_user" not in con.list_tables() or "manager_id" not in con.table("crm_user").columns:
        return []
    users = con.table("crm_user")
    ids = users.filter(users.manager_id.notnull()).select("manager_id").distinct().to_pyarrow()["manager_id"]
    return sorted(str(i) for i in ids.to_pylist())


def employee_learners(con: BaseBackend) -> list[str]:
    """The learner keys of employees (learners linked to a CRM user), as opposed to customers' contacts."""
    li = con.table("learner_identity")
    keys: list[str] = li.filter(li.crm_user_id.notnull()).select("learner_key").to_pyarrow()["learner_key"].to_pylist()
    return keys
