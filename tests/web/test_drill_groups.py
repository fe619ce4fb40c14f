"""The drill-down's choice of grouping (``by``) through the server, against SQL on the warehouse.

The reported org's teams have about eight reps, so none reaches the ten trained reps an interval
needs; its reps all sit in one department, and under a few second-line managers (one per
region). What the pages and the API say about each grouping is checked against counts written in
SQL on ``crm_user`` and the report's own trained reps (result.json's learners, built apart from
the drill-down).
"""

from __future__ import annotations

import html
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest
from fastapi.testclient import TestClient

from tests.web.conftest import ReportedOrg
from tests.web.state import CHEAP, sign_in
from training_roi.web.app import create_app
from training_roi.web.auth import add_user
from training_roi.web.store import Store

GROUPS = {"team": "r.manager_id",
          "department": "coalesce(nullif(trim(r.department), ''), '(no department)')",
          "second_line": "coalesce(m.manager_id, m.user_id)"}
"""Each grouping's key of a trained rep ``r`` (their manager ``m``), in SQL."""


def _app(reported_org: ReportedOrg, work: Path) -> tuple[Any, dict[str, str], Path]:
    """The application over a private copy of the reported org's warehouse, with a token per role."""
    db = work / "roi.duckdb"
    shutil.copyfile(reported_org.db, db)
    store = Store(work / "state.sqlite", hasher=CHEAP)
    tokens = {role: add_user(store, role, role, password=f"{role}-secret-1")[1] for role in ("viewer", "analyst")}
    app = create_app(db, store, results=[reported_org.out], snapshot_every=0.0, snapshot_in_background=False)
    return app, tokens, db


@pytest.fixture(scope="module")
def served(reported_org: ReportedOrg, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    app, tokens, db = _app(reported_org, tmp_path_factory.mktemp("groups"))
    with TestClient(app) as client:
        yield {"client": client, "tokens": tokens, "db": db, "hash": reported_org.result["study"]["hash"],
               "trained": sorted(r["unit_id"] for r in reported_org.result["headline"]["learners"])}


def _get(served: dict[str, Any], url: str, role: str = "analyst") -> Any:
    return served["client"].get(url, headers={"Authorization": f"Bearer {served['tokens'][role]}"})


def _trained_per_group(served: dict[str, Any], by: str) -> dict[str, int]:
    """Each group of ``by`` with its trained reps, counted in SQL (a rep without a manager in no team here)."""
    listed = ", ".join(f"'{u}'" for u in served["trained"])
    with duckdb.connect(str(served["db"]), read_only=True) as con:
        rows = con.sql(f"""SELECT {GROUPS[by]} AS g, count(*) FROM crm_user r
                           LEFT JOIN crm_user m ON m.user_id = r.manager_id
                           WHERE r.user_id IN ({listed}) GROUP BY g""").fetchall()
    return {str(g): n for g, n in rows}


def _names(served: dict[str, Any]) -> set[str]:
    """Every CRM user's name, raw and as a page escapes it."""
    with duckdb.connect(str(served["db"]), read_only=True) as con:
        names = {n for (n,) in con.sql("SELECT name FROM crm_user WHERE name IS NOT NULL").fetchall()}
    return names | {html.escape(n) for n in names}


def test_with_no_team_large_enough_the_page_says_so_and_names_the_wider_groupings(served: dict[str, Any]) -> None:
    h = served["hash"]
    teams = _trained_per_group(served, "team")
    assert max(teams.values()) < 10  # the simulator's teams of about eight: none can have an interval
    org = _get(served, f"/api/v1/studies/{h}/drill?limit=10000").json()
    assert org["by"] == "team" and org["with_interval"] == 0 and org["total_teams"] == len(teams)
    assert org["told"] == f"0 of {len(teams)} teams have at least 10 trained reps and an interval of their own"
    assert org["none_established"].startswith("No team has an interval of its own")
    assert f"the largest has {max(teams.values())})" in org["none_established"]
    expected = []
    for by in ("department", "second_line"):
        counted = _trained_per_group(served, by)
        k = sum(n >= 10 for n in counted.values())
        if k:
            expected.append({"by": by, "groups": len(counted), "enough": k})
    assert expected  # the one department holds every trained rep
    assert [{k: w[k] for k in ("by", "groups", "enough")} for w in org["wider"]] == expected
    department = _trained_per_group(served, "department")
    assert org["wider"][0]["text"] == (f"by department, 1 of {len(department)} department has at least 10 trained "
                                       "reps, enough for an interval")
    # The page says it in words and links the grouping it suggests.
    client = served["client"]
    assert sign_in(client, "analyst", "analyst-secret-1").status_code == 303
    page = client.get(f"/drill/{h}").text
    assert "No team has an interval of its own" in page and f'href="/drill/{h}?by=department"' in page
    assert f"0 of {len(teams)} teams have at least 10 trained reps" in page
    # By department the one group with enough trained reps has an interval, and no such message.
    by_department = _get(served, f"/api/v1/studies/{h}/drill?by=department").json()
    assert by_department["with_interval"] == sum(n >= 10 for n in department.values()) == 1
    assert by_department["none_established"] is None and by_department["wider"] == []
    assert [t["trained_units"] for t in by_department["teams"]] == sorted(department.values(), reverse=True)
    page = client.get(f"/drill/{h}?by=department").text
    assert "Win rate, org and departments" in page and "No department has" not in page
    client.cookies.clear()


def test_a_viewer_sees_second_line_groups_by_number_and_departments_by_name(served: dict[str, Any]) -> None:
    h, names = served["hash"], _names(served)
    lines = _trained_per_group(served, "second_line")
    seen = _get(served, f"/api/v1/studies/{h}/drill?by=second_line", "viewer")
    assert seen.status_code == 200 and not [n for n in names if n in seen.text]
    groups = seen.json()["teams"]
    assert sorted(t["name"] for t in groups) == sorted(f"second-line group {i}" for i in range(1, len(lines) + 1))
    assert all(t["team"] is None for t in groups)
    assert sorted(t["trained_units"] for t in groups) == sorted(lines.values())
    with duckdb.connect(str(served["db"]), read_only=True) as con:
        heads = dict(con.sql(f"SELECT user_id, 'reps under ' || name FROM crm_user WHERE user_id IN "
                             f"({', '.join(repr(k) for k in lines)})").fetchall())
    analyst = _get(served, f"/api/v1/studies/{h}/drill?by=second_line").json()["teams"]
    assert {t["team"]: t["name"] for t in analyst} == heads
    departments = _get(served, f"/api/v1/studies/{h}/drill?by=department", "viewer").json()["teams"]
    assert {t["name"] for t in departments} == set(_trained_per_group(served, "department"))
    client = served["client"]
    assert sign_in(client, "viewer", "viewer-secret-1").status_code == 303
    page = client.get(f"/drill/{h}?by=second_line")
    assert page.status_code == 200 and "second-line group 1" in page.text
    assert not [n for n in names if n in page.text]
    assert client.get(f"/drill/{h}/teams/{next(iter(lines))}?by=second_line").status_code == 403
    client.cookies.clear()


def test_a_grouping_the_server_does_not_know_is_refused_with_the_choices(served: dict[str, Any]) -> None:
    h = served["hash"]
    team = next(iter(_trained_per_group(served, "team")))
    for url in (f"/api/v1/studies/{h}/drill?by=region", f"/api/v1/studies/{h}/drill/teams/{team}?by=region"):
        refused = _get(served, url)
        assert refused.status_code == 422, url
        assert all(choice in refused.text for choice in ("team", "department", "second_line")), refused.text
    client = served["client"]
    assert sign_in(client, "analyst", "analyst-secret-1").status_code == 303
    for url in (f"/drill/{h}?by=region", f"/drill/{h}/teams/{team}?by=region"):
        page = client.get(url)
        assert page.status_code == 422 and "team, department, second_line" in page.text, url
    client.cookies.clear()
    assert _get(served, f"/api/v1/studies/{h}/drill/teams/{team}?by=department").status_code == 404


def test_a_departments_reps_are_its_trained_reps_and_the_links_keep_the_grouping(served: dict[str, Any]) -> None:
    h = served["hash"]
    with duckdb.connect(str(served["db"]), read_only=True) as con:
        sales = {u for (u,) in con.sql("SELECT user_id FROM crm_user WHERE department = 'Sales'").fetchall()}
    reps = _get(served, f"/api/v1/studies/{h}/drill/teams/Sales?by=department").json()
    assert reps["by"] == "department" and reps["name"] == "Sales"
    assert {r["key"] for r in reps["reps"]} == sales & set(served["trained"])
    client = served["client"]
    assert sign_in(client, "analyst", "analyst-secret-1").status_code == 303
    assert f'href="/drill/{h}/teams/Sales?by=department"' in client.get(f"/drill/{h}?by=department").text
    page = client.get(f"/drill/{h}/teams/Sales?by=department").text
    some = reps["reps"][0]["key"]
    assert f'href="/drill/{h}?by=department"' in page and f'href="/drill/{h}/reps/{some}?by=department"' in page
    rep = client.get(f"/drill/{h}/reps/{some}?by=department").text
    assert f'href="/drill/{h}/teams/Sales?by=department">← Sales' in rep
    client.cookies.clear()


def test_the_panel_is_measured_once_for_every_grouping(reported_org: ReportedOrg, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import training_roi.web.drill as web_drill

    calls: dict[str, list[Any]] = {"drill": [], "group_rows": []}
    for name in calls:
        real = getattr(web_drill, name)

        def counted(*args: Any, _real: Any = real, _name: str = name) -> Any:
            calls[_name].append(args[1:])
            return _real(*args)

        monkeypatch.setattr(web_drill, name, counted)
    app, tokens, _ = _app(reported_org, tmp_path)
    h = reported_org.result["study"]["hash"]
    with TestClient(app) as client:
        for role in ("analyst", "viewer", "analyst"):
            for by in ("team", "department", "second_line"):
                auth = {"Authorization": f"Bearer {tokens[role]}"}
                assert client.get(f"/api/v1/studies/{h}/drill?by={by}", headers=auth).status_code == 200
    assert len(calls["drill"]) == 1
    assert sorted(by for (by,) in calls["group_rows"]) == ["department", "second_line", "team"]
