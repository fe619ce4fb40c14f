"""The drill-down's groupings against SQL on the warehouse and the estimator run by hand.

A simulated org of 120 reps is ingested and linked; then its CRM is edited so that every rule of
the groupings is met: reps are spread over two departments, some with none and one with a blank
one; one manager loses their own manager (their reps' second line falls back to them) and one rep
loses their manager. Each grouping is checked against counts and joins written in SQL on
``crm_user`` and the panel's units, and each group's difference-in-differences against
``did_rate`` run on the group's units picked out of the panel here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from training_roi import Study, connect, ingest_folder, link
from training_roi.evaluation.drill import Drill, drill, enough, group_rows, org_row, rep_rows
from training_roi.isolate import did_rate
from training_roi.measure import GroupWindows
from training_roi.simulate import simulate


@dataclass(frozen=True)
class Org:
    """The edited warehouse, the drill-down measured on it, and what the edits chose."""

    db: Path
    d: Drill
    topless: str
    """The manager whose own manager was removed."""
    alone: str
    """The rep whose manager was removed."""
    blank: str
    """The rep whose department is blank."""


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Org:
    """120 reps over 24 months (randomised training), with departments and two broken manager lines."""
    work = tmp_path_factory.mktemp("groups")
    simulate(work / "data", reps=120, months=24, seed=3, scenario="randomised")
    db = work / "w.duckdb"
    con = connect(db)
    ingest_folder(work / "data", con)
    link(con)
    con.disconnect()
    with duckdb.connect(str(db)) as duck:
        duck.execute("""UPDATE crm_user SET department = CASE n % 5 WHEN 4 THEN NULL WHEN 3 THEN 'Mid-Market'
                                                                   WHEN 2 THEN 'Mid-Market' ELSE 'Enterprise' END
                        FROM (SELECT user_id AS id, row_number() OVER (ORDER BY user_id) AS n FROM crm_user) AS o
                        WHERE crm_user.user_id = o.id""")
        (blank,) = duck.sql("SELECT min(user_id) FROM crm_user WHERE department IS NULL AND manager_id IS NOT NULL "
                            "AND user_id IN (SELECT owner_id FROM crm_opportunity)").fetchone()
        duck.execute("UPDATE crm_user SET department = '   ' WHERE user_id = ?", [blank])
        (topless,) = duck.sql("SELECT min(manager_id) FROM crm_user WHERE user_id IN "
                              "(SELECT owner_id FROM crm_opportunity)").fetchone()
        duck.execute("UPDATE crm_user SET manager_id = NULL WHERE user_id = ?", [topless])
        (alone,) = duck.sql("SELECT max(user_id) FROM crm_user WHERE user_id IN "
                            "(SELECT owner_id FROM crm_opportunity)").fetchone()
        duck.execute("UPDATE crm_user SET manager_id = NULL WHERE user_id = ?", [alone])
    truth = json.loads((work / "data" / "truth.json").read_text())
    study = Study.model_validate({
        "name": "groups", "program": {"name": truth["program"]["name"],
                                      "activities": [truth["program"]["course_activity_id"]]},
        "isolation": {"bootstrap_replicates": 300, "seed": 4},
    })
    con = connect(db)
    measured = drill(con, study)
    con.disconnect()
    return Org(db, measured, topless, alone, blank)


def _sql(org: Org, query: str) -> list[tuple]:
    """Rows of ``query`` on the warehouse, with the panel's units as the table ``panel_units(unit_id, trained)``."""
    t, c = org.d.panel.treated, org.d.panel.comparison
    units = pa.table({"unit_id": list(t.units) + list(c.units),
                      "trained": [True] * len(t.units) + [False] * len(c.units)})
    with duckdb.connect(str(org.db), read_only=True) as duck:
        duck.register("panel_units", units)
        return duck.sql(query).fetchall()


def _pick(group: GroupWindows, keep: set[str]) -> GroupWindows:
    """The units of ``group`` in ``keep``, picked by a mask over the panel's arrays."""
    mask = np.array([u in keep for u in group.units], dtype=bool)
    return GroupWindows(units=tuple(u for u in group.units if u in keep), base_successes=group.base_successes[mask],
                        base_trials=group.base_trials[mask], post_successes=group.post_successes[mask],
                        post_trials=group.post_trials[mask])


def _pooled(group: GroupWindows) -> tuple[float, float]:
    return (float(group.base_successes.sum() / group.base_trials.sum()),
            float(group.post_successes.sum() / group.post_trials.sum()))


DEPARTMENTS = """SELECT coalesce(nullif(trim(u.department), ''), '(no department)') AS department,
                        count(*) FILTER (WHERE p.trained), count(*) FILTER (WHERE NOT p.trained),
                        list(p.unit_id) FILTER (WHERE p.trained), list(p.unit_id) FILTER (WHERE NOT p.trained)
                 FROM panel_units p LEFT JOIN crm_user u ON u.user_id = p.unit_id GROUP BY 1"""


def test_a_departments_trained_and_comparison_reps_are_counted_in_sql(org: Org) -> None:
    counted = {name: (trained, comparison) for name, trained, comparison, _, _ in _sql(org, DEPARTMENTS)}
    assert set(counted) == {"Enterprise", "Mid-Market", "(no department)"}
    assert org.d.groupings["department"].group_of[org.blank] == "(no department)"  # blank is none
    rows = {r.key: r for r in group_rows(org.d, "department")}
    everyone = len(org.d.panel.comparison.units)
    for name, (trained, comparison) in counted.items():
        assert rows[name].trained_units == trained
        assert rows[name].comparison_units == (comparison if comparison >= 10 else everyone)
        assert rows[name].name == name
    assert sum(r.trained_units for r in rows.values()) == org_row(org.d).trained_units


def test_a_second_line_groups_reps_are_those_whose_managers_manager_it_is(org: Org) -> None:
    lines = _sql(org, """SELECT m.manager_id, list(p.unit_id) FROM panel_units p
                         JOIN crm_user r ON r.user_id = p.unit_id JOIN crm_user m ON m.user_id = r.manager_id
                         WHERE m.manager_id IS NOT NULL GROUP BY 1""")
    grouping = org.d.groupings["second_line"]
    assert len(lines) >= 3
    for head, units in lines:
        assert grouping.members[head] == frozenset(units)
    for head, name in _sql(org, f"SELECT user_id, 'reps under ' || name FROM crm_user WHERE user_id IN "
                                f"({', '.join(repr(h) for h, _ in lines)})"):
        assert grouping.names[head] == name
    # A manager without a manager of their own: their reps' second line is the manager themself.
    (own,) = _sql(org, f"SELECT list(p.unit_id) FROM panel_units p JOIN crm_user r ON r.user_id = p.unit_id "
                       f"WHERE r.manager_id = '{org.topless}'")[0]
    assert own and grouping.members[org.topless] == frozenset(own)
    # A rep without a manager: no team and no second line, under the placeholder both show.
    assert org.d.groupings["team"].group_of[org.alone] == "(no manager)"
    assert grouping.group_of[org.alone] == "(no manager)"


def test_a_groups_effect_is_did_rate_on_its_own_units_of_the_panel(org: Org) -> None:
    d = org.d
    checked = 0
    for by, query in (("department", DEPARTMENTS), ("second_line", None)):
        rows = {r.key: r for r in group_rows(d, by)}
        if query is None:
            found = _sql(org, """SELECT coalesce(m.manager_id, m.user_id),
                                        list(p.unit_id) FILTER (WHERE p.trained),
                                        list(p.unit_id) FILTER (WHERE NOT p.trained)
                                 FROM panel_units p JOIN crm_user r ON r.user_id = p.unit_id
                                 JOIN crm_user m ON m.user_id = r.manager_id GROUP BY 1""")
        else:
            found = [(name, trained, comparison) for name, _, _, trained, comparison in _sql(org, query)]
        for key, trained, comparison in found:
            row = rows.get(key)
            if row is None or len(trained or []) < 10:
                continue
            mine = _pick(d.panel.treated, set(trained))
            own = _pick(d.panel.comparison, set(comparison or []))
            against = own if len(own.units) >= 10 else d.panel.comparison
            e = did_rate(mine, against, replicates=d.replicates, confidence=d.confidence, seed=d.seed)
            assert row.effect == pytest.approx(e.estimate, abs=1e-12)
            assert row.interval == pytest.approx((e.ci_low, e.ci_high), abs=1e-12)
            assert (row.trained_baseline, row.trained_post) == pytest.approx(_pooled(mine), abs=1e-12)
            checked += 1
    assert checked >= 3  # both departments and at least one second-line group were large enough


def test_a_groups_reps_are_set_against_the_same_comparison_as_its_row(org: Org) -> None:
    d = org.d
    whole = _pooled(d.panel.comparison)
    fell_back = kept = 0
    for by in ("team", "department", "second_line"):
        for row in group_rows(d, by):
            members = d.groupings[by].members[row.key]
            own = [u for u in d.panel.comparison.units if u in members]
            expected = whole if len(own) < 10 else _pooled(_pick(d.panel.comparison, set(own)))
            assert (row.comparison_baseline, row.comparison_post) == pytest.approx(expected, abs=1e-12)
            reps = rep_rows(d, row.key, by)
            assert len(reps) == row.trained_units
            for rep in reps:
                assert (rep.comparison_baseline, rep.comparison_post) == pytest.approx(expected, abs=1e-12)
                assert rep.comparison_units == row.comparison_units
            fell_back += int(0 < len(own) < 10)
            kept += int(len(own) >= 10)
    assert fell_back and kept  # both sides of the rule were met: a few comparison reps of its own, and ten or more


def test_how_many_groups_have_ten_trained_reps_is_counted_in_sql(org: Org) -> None:
    teams = _sql(org, """SELECT count(*) FILTER (WHERE n >= 10), count(*) FROM (
                           SELECT coalesce(r.manager_id, '(no manager)') AS team, count(*) AS n FROM panel_units p
                           LEFT JOIN crm_user r ON r.user_id = p.unit_id WHERE p.trained GROUP BY 1)""")[0]
    departments = _sql(org, f"SELECT count(*) FILTER (WHERE n >= 10), count(*) FROM "
                            f"(SELECT department, t AS n FROM ({DEPARTMENTS}) AS g(department, t, c, tl, cl) "
                            f"WHERE t > 0)")[0]
    assert enough(org.d, "team") == teams
    assert enough(org.d, "department") == departments
    assert teams[0] == 0 < departments[0]  # teams of about eight never reach ten trained reps; departments do
