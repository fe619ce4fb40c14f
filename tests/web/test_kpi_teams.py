"""KPIs by month for one team: the API's ``team`` filter and the KPI page's select of teams.

A team is the reps sharing a manager. One team's rows must be exactly that team's rows of the
unfiltered team grain (provisional months still marked), and its win rate the won over the closed
deals of its reps counted with plain SQL on the warehouse. A viewer reads teams by number — the
n-th of the warehouse's managers' ids, sorted, counted here with SQL — whichever KPI they look at,
and never a manager's id or name; an unknown team is a 422 that says so.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import quote

import duckdb
import pytest
from fastapi.testclient import TestClient

from tests.web.conftest import ReportedOrg
from tests.web.state import CHEAP
from training_roi.web.app import create_app
from training_roi.web.auth import add_user
from training_roi.web.store import Store

ALL = "limit=100000"


@pytest.fixture(scope="module")
def served(reported_org: ReportedOrg, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The application over the reported org, a viewer's and an analyst's token, the warehouse's managers."""
    store = Store(tmp_path_factory.mktemp("teams-state") / "state.sqlite", hasher=CHEAP)
    tokens = {role: add_user(store, role, role, password=f"{role}-secret-1")[1] for role in ("viewer", "analyst")}
    app = create_app(reported_org.db, store, snapshot_every=0.0, snapshot_in_background=False)
    with duckdb.connect(str(reported_org.db), read_only=True) as con:
        managers = con.sql("""SELECT DISTINCT m.user_id, m.name FROM crm_user u JOIN crm_user m
                              ON u.manager_id = m.user_id ORDER BY m.user_id""").fetchall()
    with TestClient(app) as client:
        yield {"client": client, "tokens": tokens, "db": reported_org.db, "managers": managers}


def _get(served: dict[str, Any], role: str, query: str) -> Any:
    return served["client"].get(f"/api/v1/kpis?{query}", headers={"Authorization": f"Bearer {served['tokens'][role]}"})


@pytest.mark.parametrize("role", ["analyst", "viewer"])
def test_one_team_is_exactly_that_teams_rows_of_the_team_grain(served: dict[str, Any], role: str) -> None:
    # Deals dated by their creation month: the last months, their deals mostly open, are provisional.
    whole = _get(served, role, f"kpi=win_rate&basis=created&grain=team&{ALL}").json()
    teams = sorted({r["grain_id"] for r in whole})
    assert len(teams) >= 3
    provisional = 0
    for team in teams:
        mine = [r for r in whole if r["grain_id"] == team]
        implied = _get(served, role, f"kpi=win_rate&basis=created&team={quote(team)}&{ALL}")  # team grain implied
        assert implied.status_code == 200 and implied.json() == mine, team
        provisional += sum(r["provisional"] for r in implied.json())
    assert provisional > 0  # the months still maturing stay marked
    explicit = _get(served, role, f"kpi=win_rate&basis=created&grain=team&team={quote(teams[0])}&format=csv")
    assert explicit.status_code == 200 and len(explicit.text.splitlines()) == 1 + sum(
        r["grain_id"] == teams[0] for r in whole)


def test_a_teams_win_rate_is_its_reps_won_over_closed_deals_counted_in_sql(served: dict[str, Any]) -> None:
    counted: dict[str, dict[str, float]] = {}
    with duckdb.connect(str(served["db"]), read_only=True) as con:
        for team, month, rate in con.sql("""
                SELECT u.manager_id, strftime(o.close_date, '%Y-%m'), count(*) FILTER (WHERE o.is_won) / count(*)
                FROM crm_opportunity o JOIN crm_user u ON o.owner_id = u.user_id
                WHERE o.is_closed AND o.close_date IS NOT NULL AND NOT o.is_deleted AND u.manager_id IS NOT NULL
                GROUP BY ALL""").fetchall():
            counted.setdefault(team, {})[month] = rate
    team = max(counted, key=lambda t: len(counted[t]))
    rows = _get(served, "analyst", f"kpi=win_rate&team={team}&{ALL}").json()
    by_month = {r["period"][:7]: r["value"] for r in rows if r["value"] is not None}
    assert len(by_month) >= 10 and {r["grain_id"] for r in rows} == {team}
    for month, rate in counted[team].items():
        assert by_month[month] == pytest.approx(rate, abs=1e-12), month


def test_a_viewer_reads_each_team_by_its_number_whichever_kpi_and_no_manager(served: dict[str, Any]) -> None:
    managers = served["managers"]
    number = {f"team {i}": manager for i, (manager, _) in enumerate(managers, 1)}
    for kpi in ("win_rate", "avg_won_deal_size"):
        seen = _get(served, "viewer", f"kpi={kpi}&grain=team&{ALL}")
        assert not [m for pair in managers for m in pair if m and m in seen.text]
        numbered = {r["grain_id"] for r in seen.json()} - {"(no owner)", "(no team)"}
        assert numbered and numbered <= set(number)
        for label in numbered:
            theirs = _get(served, "viewer", f"kpi={kpi}&team={quote(label)}&{ALL}").json()
            ours = _get(served, "analyst", f"kpi={kpi}&team={number[label]}&{ALL}").json()
            assert [r["value"] for r in theirs] == [r["value"] for r in ours] and ours, (kpi, label)
    # A manager's id is an analyst's key, not a viewer's: to a viewer it is no team.
    refused = _get(served, "viewer", f"kpi=win_rate&team={managers[0][0]}")
    assert refused.status_code == 422 and managers[0][0] not in refused.json()["detail"][0]["msg"].split("(")[1]


def test_an_unknown_team_or_a_team_at_another_grain_is_a_422_that_says_so(served: dict[str, Any]) -> None:
    unknown = _get(served, "analyst", "kpi=win_rate&team=no-such-team")
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["msg"].startswith("team 'no-such-team': no such team")
    other = _get(served, "analyst", f"kpi=win_rate&grain=org&team={served['managers'][0][0]}")
    assert other.status_code == 422 and "team filters the team grain" in other.json()["detail"][0]["msg"]
    assert _get(served, "viewer", "kpi=win_rate&grain=rep&team=team%201").status_code == 403


def _page(client: TestClient, role: str, url: str) -> Any:
    client.cookies.clear()
    form = client.get("/login?next=/").text
    csrf = form.split('name="csrf" value="')[1].split('"')[0]
    client.post("/login", data={"name": role, "password": f"{role}-secret-1", "csrf": csrf, "next": "/"})
    page = client.get(url)
    client.cookies.clear()
    return page


def test_the_kpi_page_shows_one_team_chosen_from_its_select(served: dict[str, Any]) -> None:
    client = served["client"]
    rows = _get(served, "analyst", f"kpi=win_rate&basis=created&grain=team&{ALL}").json()
    team = next(r for r in rows if r["provisional"] and r["name"] and r["name"].startswith("team of "))
    manager_name = dict(served["managers"])[team["grain_id"]]
    page = _page(client, "analyst", f"/kpis?kpi=win_rate&basis=created&grain=team&team={team['grain_id']}")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert f'<option value="{team["grain_id"]}" selected>team of {manager_name}</option>' in text
    table = text[text.index("<table>"):]
    cells = [row.split("</td>")[:2] for row in table.split("<tr><td>")[1:]]
    mine = [r for r in rows if r["grain_id"] == team["grain_id"] and r["period"] is not None]
    assert [c[0] for c in cells] == [f"team of {manager_name}"] * len(mine)
    starred = [c[1].endswith("*") for c in cells]  # the months still maturing, starred
    assert starred == [bool(r["provisional"]) for r in mine] and any(starred)
    assert "<svg" in text  # one team is one series: charted
    # A viewer's select lists the teams by number, as the API numbers them; an unknown team is a message.
    seen = _page(client, "viewer", "/kpis?kpi=win_rate&grain=team")
    listed = {v.split('"')[0] for v in seen.text.split('<option value="team ')[1:]}
    numbered = {r["grain_id"] for r in _get(served, "viewer", f"kpi=win_rate&grain=team&{ALL}").json()}
    assert {f"team {n}" for n in listed} == numbered - {"(no owner)", "(no team)"}
    wrong = _page(client, "viewer", "/kpis?kpi=win_rate&grain=team&team=team%20999")
    assert wrong.status_code == 422 and "team &#39;team 999&#39;: no such team" in wrong.text
