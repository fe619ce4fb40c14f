"""The insight page: who benefits by subgroup, where to train next and which lessons matter, as result.json holds them.

A simulated org where a few drills of about ninety have an effect of their own (scenario
``lesson_map``) is reported once with ``insight.subgroups: [role, manager]`` and
``insight.lesson_map: true``, and stored three times under its study hash: version 1 without the
two sections (a study that asked for neither), version 2 with each section's reason alone (a study
that asked and got none), version 3 as reported. The page must show version 3's
figures worded here from the document's own numbers — each subgroup's effects with their
simultaneous and pointwise intervals and q-values, the roll-out's money and ROI, each flagged
lesson — with the evidence's label and caveat and the links to the CSV files; version 2 says
why there is none, and version 1 shows nothing of it. A viewer reads the same aggregates with each
manager's subgroup by number, and neither a manager's nor a learner's name anywhere, on the page
or in the API.
"""

from __future__ import annotations

import html
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.builders import ingest_and_report
from tests.web.state import CHEAP, csrf_of
from training_roi.web.app import create_app
from training_roi.web.auth import add_user
from training_roi.web.insight import insights_of
from training_roi.web.results import without_people
from training_roi.web.store import Store


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The application serving both versions, with a viewer's and an analyst's token and the full result."""
    from training_roi.simulate import simulate

    work = tmp_path_factory.mktemp("insight")
    simulate(work / "data", reps=800, months=18, seed=3, scenario="lesson_map")
    truth = json.loads((work / "data" / "truth.json").read_text(encoding="utf-8"))
    out = ingest_and_report(work / "data", work, truth, "Daily drills",
                            program={"name": truth["program"]["name"], "completion": "lessons",
                                     "activities": [truth["program"]["course_activity_id"]]},
                            insight={"subgroups": ["role", "manager"], "lesson_map": True})
    doc = json.loads((out / "result.json").read_text(encoding="utf-8"))
    plain = work / "plain"
    plain.mkdir()
    asked_none = {k: v for k, v in doc.items() if k not in ("subgroups", "lesson_map")}
    (plain / "result.json").write_text(json.dumps(asked_none), encoding="utf-8")
    reasons = work / "reasons"
    reasons.mkdir()
    (reasons / "result.json").write_text(json.dumps({**asked_none, "subgroups": {"basis": _NO_COMPARISON},
                                                     "lesson_map": {"basis": _NO_LESSONS}}), encoding="utf-8")
    store = Store(work / "state.sqlite", hasher=CHEAP)
    tokens = {role: add_user(store, role, role, password=f"{role}-secret-1")[1] for role in ("viewer", "analyst")}
    app = create_app(work / "roi.duckdb", store, results=[plain, reasons, out], snapshot_every=0.0,
                     snapshot_in_background=False)
    with TestClient(app) as client:
        yield {"client": client, "tokens": tokens, "doc": doc, "hash": doc["study"]["hash"], "out": out}


_NO_COMPARISON = "no comparison group: the study compares no trained units with untrained ones"
_NO_LESSONS = "no lesson was completed by 5 or more units"


def _signed_in(client: TestClient, role: str) -> None:
    client.cookies.clear()
    csrf = csrf_of(client.get("/login?next=/").text)
    signed = client.post("/login", data={"name": role, "password": f"{role}-secret-1", "csrf": csrf, "next": "/"},
                         follow_redirects=False)
    assert signed.status_code == 303


def _page(client: TestClient, role: str, url: str, status: int = 200) -> str:
    """``url`` as ``role`` sees it, signed in through the form, its entities decoded."""
    _signed_in(client, role)
    page = client.get(url)
    client.cookies.clear()
    assert page.status_code == status, page.text
    return html.unescape(page.text)


def _pts(rate: float) -> str:
    """A change of a rate as users read it, written out: +2.0 pts, −6.4 pts (a true minus sign)."""
    return f"{rate * 100:+.1f} pts".replace("-", "−")


def _span(low: float, high: float) -> str:
    return f"{_pts(low)} to {_pts(high)}"


def _dollars(cents_text: str) -> str:
    amount = float(cents_text)
    return ("−" if amount < 0 else "") + f"${round(abs(amount)):,}"


def _pct(value: float) -> str:
    return f"{value:,.1f}%".replace("-", "−")


def _row(text: str, first_cell: str) -> str:
    """The one table row whose first cell is ``first_cell``."""
    rows = [r.split("</tr>")[0] for r in text.split("<tr>") if r.startswith(f"<td>{first_cell}</td>")]
    assert len(rows) == 1, (first_cell, len(rows))
    return rows[0]


def _section(text: str, key: str) -> str:
    start = text.index(f'<h2 id="{key}">')
    end = text.find("<h2 ", start + 1)
    return text[start:end if end > 0 else len(text)]


def _managers(doc: dict[str, Any]) -> set[str]:
    """Every manager's name in the full result's subgroups: what a viewer must never read."""
    return {r["level"].rsplit(" (", 1)[0] for r in doc["subgroups"]["effects"]
            if r["variable"] == "manager" and r["level"] != "(missing)"}


def _learners(doc: dict[str, Any]) -> set[str]:
    return {v for row in doc["headline"]["learners"] for v in (row["name"], row["learner"], row["unit_id"]) if v}


def test_the_page_shows_each_subgroup_and_the_rollout_as_the_result_holds_them(served: Any) -> None:
    doc, h = served["doc"], served["hash"]
    sub = doc["subgroups"]
    assert sub["kpi"] == "win_rate" and sub["evidence"] == "quasi-experimental"  # intervals in points below
    study = _page(served["client"], "analyst", f"/studies/{h}?version=3")
    assert f'href="/studies/{h}/v3/insight">Insight: who benefits; which lessons matter →' in study
    text = _page(served["client"], "analyst", f"/studies/{h}/v3/insight")
    section = _section(text, "subgroups")
    assert "Evidence: quasi-experimental</strong> — trained and untrained units are compared after adjusting" in section
    assert "Caveat: the effect on the not yet trained is what training would do" in section
    estimated = [r for r in sub["effects"] if r["att_estimate"] is not None]
    assert len(estimated) >= 5
    table = section[:section.index("<h3>Where to train next</h3>")]
    for r in estimated:
        row = _row(table, f"{r['variable']} = {r['level']}")
        cells = [c.split(">", 1)[1] for c in row.split("</td>")[:-1]]
        assert cells[1:3] == [f"{r['trained_units']:,}", f"{r['untrained_units']:,}"]
        for side, at in (("att", 3), ("atu", 7)):
            assert cells[at:at + 4] == [_pts(r[f"{side}_estimate"]), _span(r[f"{side}_sim_low"], r[f"{side}_sim_high"]),
                                        _span(r[f"{side}_low"], r[f"{side}_high"]), f"{r[f'{side}_q_value']:.3g}"]
        excludes_zero = r["att_sim_low"] > 0 or r["att_sim_high"] < 0
        assert cells[11] == ("established" if excludes_zero else "not established")
    # A manager with fewer than 10 units has no figures: named among those not estimated.
    missing = [f"{r['variable']} = {r['level']}" for r in sub["effects"] if r["att_estimate"] is None]
    assert missing and f"{len(missing)} subgroups not estimated" in section and missing[0] in section
    # Whether the effect differs by each variable, in words, at the study's 95%.
    for variable, test in sub["differ"].items():
        said = "established" if test["p_value"] < 0.05 else "not established"
        assert f"The effect differs by {variable}: {said} (Wald test, p = {test['p_value']:.3g})." in section
    # The roll-out: its first twelve rows in the result's order, money and ROI worded here.
    rollout = section[section.index("<h3>Where to train next</h3>"):]
    valued = [r for r in sub["rollout"] if r["effect"] is not None]
    assert len(valued) >= 5 and valued == sub["rollout"][:len(valued)]  # those not estimated come last
    shown = [r.split("</td>")[0].removeprefix("<td>") for r in rollout.split("<tr>")[2:]]
    assert shown == [f"{r['variable']} = {r['level']}" for r in valued[:12]]
    for r in valued[:12]:
        row = _row(rollout, f"{r['variable']} = {r['level']}")
        assert f'<td class="n">{_pts(r["effect"])}</td><td class="n">{_span(r["effect_low"], r["effect_high"])}</td>' \
               f'<td class="n">{_dollars(r["value_per_unit"])}</td><td class="n">{_dollars(r["cost_per_unit"])}</td>' \
               f'<td class="n">{_pct(r["roi_pct"])} [{_pct(r["roi_pct_low"])} to {_pct(r["roi_pct_high"])}]</td>' \
               f'<td>{r["evidence"]}</td>' in row
    assert (f"The first 12 of the {len(valued)} subgroups with an estimate." in rollout) == (len(valued) > 12)
    assert f'<a href="/studies/{h}/v3/subgroups.csv">subgroups.csv</a>' in section
    csv = served["client"]
    _signed_in(csv, "analyst")
    got = csv.get(f"/studies/{h}/v3/subgroups.csv")
    csv.cookies.clear()
    assert got.status_code == 200 and got.content == (served["out"] / "subgroups.csv").read_bytes()


def test_the_page_shows_every_flagged_lesson_against_the_average_lesson(served: Any) -> None:
    doc, h = served["doc"], served["hash"]
    m = doc["lesson_map"]
    assert m["matters"], "the simulated drills that matter should stand out"
    text = _page(served["client"], "analyst", f"/studies/{h}/v3/insight")
    section = _section(text, "lesson_map")
    assert f"Evidence: association</strong> — {insights_of(doc, kept=(), may_open=bool)[1].evidence_means}." in section
    assert f"Caveat: {m['caveat']}." in section
    assert f"Lesson map (association): {len(m['matters'])} of {len(m['lessons'])} lessons stand out" in section
    for r in m["lessons"]:
        if not r["matters"]:
            continue
        row = _row(section, r["lesson"])
        assert (f'<td class="n">{r["takers"]:,}</td><td class="n">{_pts(r["coefficient"])}</td>'
                f'<td class="n">{_span(r["low"], r["high"])}</td><td class="n">{_pts(r["versus_average"])}</td>'
                f'<td class="n">{r["q_value"]:.3g}</td><td class="good">stands out</td>') in row
    assert f'<a href="/studies/{h}/v3/lesson_map.csv">lesson_map.csv</a>' in section


def test_a_result_without_insight_shows_nothing_of_it(served: Any) -> None:
    h = served["hash"]
    study = _page(served["client"], "analyst", f"/studies/{h}?version=1")
    assert "Insight:" not in study and f"/{h}/v1/insight" not in study and "Who benefits" not in study
    assert "Which lessons matter" not in study
    page = _page(served["client"], "analyst", f"/studies/{h}/v1/insight", status=404)
    assert "asked for no insight" in page
    # Nothing for a version that does not exist, and the file route still refuses names it does not keep.
    _page(served["client"], "analyst", f"/studies/{h}/v9/insight", status=404)
    _page(served["client"], "analyst", f"/studies/{h}/v3/insights", status=404)


def test_a_study_that_asked_and_got_none_says_why_under_each_heading(served: Any) -> None:
    h = served["hash"]
    study = _page(served["client"], "viewer", f"/studies/{h}?version=2")
    assert f'href="/studies/{h}/v2/insight">Insight: who benefits; which lessons matter →' in study
    text = _page(served["client"], "viewer", f"/studies/{h}/v2/insight")
    subgroups, lessons = _section(text, "subgroups"), _section(text, "lesson_map")
    assert f"<p>N{_NO_COMPARISON[1:]}.</p>" in subgroups and f"<p>N{_NO_LESSONS[1:]}.</p>" in lessons
    assert "Evidence:" not in text and "<table>" not in text and ".csv" not in text


def test_a_viewer_reads_the_aggregates_with_managers_by_number_and_no_names(served: Any) -> None:
    doc, h = served["doc"], served["hash"]
    names = _managers(doc) | _learners(doc)
    assert len(_managers(doc)) >= 20
    text = _page(served["client"], "viewer", f"/studies/{h}/v3/insight")
    assert not [n for n in names if n in text]
    section = _section(text, "subgroups")
    table = section[:section.index("<h3>Where to train next</h3>")]
    numbered = without_people(doc)["subgroups"]
    for r in numbered["effects"]:
        if r["att_estimate"] is not None:
            assert _pts(r["att_estimate"]) in _row(table, f"{r['variable']} = {r['level']}")
    assert "manager = team 1" in section and "Evidence: quasi-experimental" in section
    # subgroups.csv names managers: not linked for a viewer, and refused; lesson_map.csv names no one.
    assert "subgroups.csv\">" not in text and "subgroups.csv names people: analysts and admins open it." in text
    assert f'<a href="/studies/{h}/v3/lesson_map.csv">lesson_map.csv</a>' in text
    client = served["client"]
    _signed_in(client, "viewer")
    assert client.get(f"/studies/{h}/v3/subgroups.csv").status_code == 403
    assert client.get(f"/studies/{h}/v3/lesson_map.csv").content == (served["out"] / "lesson_map.csv").read_bytes()
    client.cookies.clear()


def test_the_api_serves_the_sections_whole_to_an_analyst_and_without_names_to_a_viewer(served: Any) -> None:
    doc, h, client = served["doc"], served["hash"], served["client"]

    def result(role: str, url: str) -> dict[str, Any]:
        got = client.get(url, headers={"Authorization": f"Bearer {served['tokens'][role]}"})
        assert got.status_code == 200, got.text
        return dict(got.json()["result"])

    for url in (f"/api/v1/studies/{h}", f"/api/v1/studies/{h}/versions/3"):
        full = result("analyst", url)
        assert full["subgroups"] == doc["subgroups"] and full["lesson_map"] == doc["lesson_map"]
        seen = result("viewer", url)
        assert seen["lesson_map"] == doc["lesson_map"] and "redacted" in seen and "learners" not in seen["headline"]
        text = json.dumps(seen, ensure_ascii=False)
        assert not [n for n in _managers(doc) | _learners(doc) if n in text]
        effects = seen["subgroups"]["effects"]
        assert [r["att_estimate"] for r in effects] == [r["att_estimate"] for r in doc["subgroups"]["effects"]]
        managers = sorted((r["level"] for r in doc["subgroups"]["effects"] if r["variable"] == "manager"),
                          key=lambda level: level.rsplit(" (", 1)[1])
        numbered = {f"team {i}" for i in range(1, len(managers) + 1)}
        assert {r["level"] for r in effects if r["variable"] == "manager"} == numbered
        first = next(r for r in effects if r["variable"] == "manager" and r["level"] == "team 1")
        original = next(r for r in doc["subgroups"]["effects"] if r["level"] == managers[0])
        assert first["trained_units"] == original["trained_units"]  # numbered in the order of the CRM ids
    assert "subgroups" not in result("viewer", f"/api/v1/studies/{h}/versions/1")


def test_a_viewer_gets_the_summary_of_next_lessons_without_the_rows_about_people() -> None:
    doc = {"headline": {"learners": [{"name": "Zelda"}]},
           "next_lesson": {"evidence": "association", "summary": "3 lessons recommended to 40 reps",
                           "recommendations": [{"rep": "005A", "name": "Zelda", "lesson": "drill 7"}]}}
    seen = without_people(doc)
    assert seen["next_lesson"] == {"evidence": "association", "summary": "3 lessons recommended to 40 reps"}
    assert doc["next_lesson"]["recommendations"]  # the stored document is left as it is
    assert "next_lesson" not in without_people({"headline": {}})
    assert without_people({"headline": {}, "next_lesson": None})["next_lesson"] is None


def test_the_words_for_an_established_difference_and_for_a_section_without_figures(served: Any) -> None:
    doc = json.loads(json.dumps(served["doc"]))
    doc["subgroups"]["differ"] = {"role": {"statistic": 14.2, "df": 4.0, "p_value": 0.0067}}
    doc["lesson_map"] = {"basis": "no lesson has 5 takers"}
    subgroups, lessons = insights_of(doc, kept={"subgroups.csv"}, may_open=lambda name: False)
    assert subgroups.shown is not None
    assert subgroups.shown.figures["differ"] == ["The effect differs by role: established (Wald test, p = 0.0067)."]
    assert subgroups.files == () and subgroups.withheld == ("subgroups.csv",)
    assert lessons.basis == "no lesson has 5 takers" and lessons.shown is None and lessons.evidence_means == ""
    assert insights_of({"headline": {}}, kept=(), may_open=bool) == []
