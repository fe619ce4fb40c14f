"""Every method side by side on the study page and under ``/api/v1/studies/{hash}/methods``.

The reported org's study is answered twice: by its own design alone, and by every method
(``report --method all``). The server must show the second's methods as its result.json holds
them — each method's interval worded here from the document's own numbers, its verdict read off
that interval here, the recommended method, the challenges and the diagnostics — and say of the
first, in one line, how to get them. A hand-worked document checks the words for a KPI where
lower is better (the sales cycle), whose verdicts run the other way.
"""

from __future__ import annotations

import html
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.web.conftest import ReportedOrg
from tests.web.state import CHEAP
from training_roi.web.app import create_app
from training_roi.web.auth import add_user
from training_roi.web.methods import methods_of
from training_roi.web.store import Store


@pytest.fixture(scope="module")
def served(reported_org: ReportedOrg, reported_every_method: ReportedOrg,
           tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The application serving both answers of the study, with a viewer's and an analyst's token."""
    store = Store(tmp_path_factory.mktemp("methods-state") / "state.sqlite", hasher=CHEAP)
    tokens = {role: add_user(store, role, role, password=f"{role}-secret-1")[1] for role in ("viewer", "analyst")}
    app = create_app(reported_org.db, store, results=[reported_org.out, reported_every_method.out],
                     snapshot_every=0.0, snapshot_in_background=False)
    with TestClient(app) as client:
        yield {"client": client, "tokens": tokens, "plain": reported_org.result,
               "every": reported_every_method.result, "people": reported_every_method.people()}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _page(client: TestClient, role: str, url: str) -> str:
    """``url`` as ``role`` sees it, signed in through the form, its entities decoded."""
    client.cookies.clear()
    form = client.get("/login?next=/").text
    csrf = form.split('name="csrf" value="')[1].split('"')[0]
    signed = client.post("/login", data={"name": role, "password": f"{role}-secret-1", "csrf": csrf, "next": "/"},
                         follow_redirects=False)
    assert signed.status_code == 303
    page = client.get(url)
    assert page.status_code == 200, page.text
    client.cookies.clear()
    return html.unescape(page.text)


def _pts(rate: float) -> str:
    """A change of a rate as users read it, written out: +2.0 pts, −6.4 pts (a true minus sign)."""
    return f"{rate * 100:+.1f} pts".replace("-", "−")


def _verdict(effect: dict[str, Any]) -> str:
    """Win rate: higher is better; the interval decides, and a naive comparison is only ever biased."""
    if effect["biased"]:
        return "biased"
    if effect["ci_low"] <= 0 <= effect["ci_high"]:
        return "not established"
    return "improved" if effect["ci_low"] > 0 else "worsened"


def _row_of(text: str, label: str) -> str:
    """The table row whose first cell is ``label`` (starred when recommended)."""
    rows = [r for r in text.split("<tr>") if r.startswith((f"<td>{label}</td>", f"<td>★ {label}</td>"))]
    assert len(rows) == 1, (label, len(rows))
    return rows[0].split("</tr>")[0]


def test_the_study_page_shows_every_method_with_its_interval_as_the_result_holds_it(served: dict[str, Any]) -> None:
    doc = served["every"]
    block = doc["methods"]
    assert doc["headline"]["headline_kpi"] == "win_rate"  # the intervals below are rates, in points
    text = _page(served["client"], "viewer", f"/studies/{doc['study']['hash']}")
    section = text[text.index("<h2>Methods side by side</h2>"):text.index("<h2>How sure</h2>")]
    by_method = {r["method"]: r for r in block["results"]}
    recommended = by_method[block["recommended"]]
    assert f"Recommended: {recommended['label']}." in section and f"Why: {block['reason']}" in section
    table = section[:section.index("<h3>Challenges to each method</h3>")]
    verdicts = set()
    for result in block["results"]:
        row = _row_of(table, result["label"])
        assert row.startswith("<td>★ ") == (result["method"] == block["recommended"])
        effect = result["effect"]
        if effect is None:
            assert "not applicable" in row and result["not_applicable"] in row
            continue
        assert _pts(effect["estimate"]) in row
        assert f"{_pts(effect['ci_low'])} to {_pts(effect['ci_high'])}" in row
        verdict = _verdict(effect)
        verdicts.add(verdict)
        assert (f">{verdict}<" if verdict != "biased" else ">biased: never the answer<") in row
        passed = sum(r["passed"] for r in result["refutations"])
        if result["refutations"]:
            assert f">{passed} of {len(result['refutations'])}<" in row
    assert "biased" in verdicts and sum(r["effect"] is None for r in block["results"]) >= 1
    # Each challenge, passed or failed, with what it found.
    challenges = section[section.index("<h3>Challenges to each method</h3>"):]
    for result in block["results"]:
        for r in result["refutations"]:
            found = f"<td>{result['label']}</td><td>{r['test']}</td><td class=\"{'good' if r['passed'] else 'bad'}\">"
            assert found + ("passed" if r["passed"] else "failed") in challenges
    # The diagnostics the recommendation weighed, figures read from the result.
    evidence = block["evidence"]
    assert f"standardised mean difference is {abs(evidence['largest_smd_before']):.2f}, on " \
           f"{evidence['largest_smd_covariate']}" in section
    assert f"p-value {evidence['pre_trend_p_value']:.3f}" in section and evidence["pre_trends"] in section
    assert f"M̄ = {evidence['trend_breakdown']:.2f}" in section and evidence["trend_sensitivity"] in section
    assert not [p for p in served["people"] if p in text]


def test_the_api_serves_the_same_rows_to_a_viewer_and_an_analyst(served: dict[str, Any]) -> None:
    client, doc = served["client"], served["every"]
    block, h = doc["methods"], doc["study"]["hash"]
    answers = [client.get(f"/api/v1/studies/{h}/methods", headers=_auth(served["tokens"][role]))
               for role in ("viewer", "analyst")]
    assert [a.status_code for a in answers] == [200, 200] and answers[0].json() == answers[1].json()
    got = answers[0].json()
    assert got["ran"] and got["version"] == 1 and got["recommended"] == block["recommended"]
    assert got["unit"] == "rate" and got["kpi"] == "win_rate"
    assert [r["method"] for r in got["rows"]] == [r["method"] for r in block["results"]]
    for row, result in zip(got["rows"], block["results"], strict=True):
        effect = result["effect"]
        assert row["recommended"] == (result["method"] == block["recommended"])
        if effect is None:
            assert row["verdict"] == "not applicable" and row["not_applicable"] == result["not_applicable"]
            assert row["estimate"] is None
            continue
        assert (row["estimate"], row["ci_low"], row["ci_high"]) == (effect["estimate"], effect["ci_low"],
                                                                     effect["ci_high"])
        assert row["interval"] == f"{_pts(effect['ci_low'])} to {_pts(effect['ci_high'])}"
        assert row["verdict"] == _verdict(effect) and row["biased"] == effect["biased"]
        assert [(r["test"], r["passed"]) for r in row["refutations"]] == [(r["test"], r["passed"])
                                                                           for r in result["refutations"]]
    named = {d["name"]: d["value"] for d in got["diagnostics"]}
    assert named["largest_smd_before"] == block["evidence"]["largest_smd_before"]
    assert named["pre_trend_p_value"] == block["evidence"]["pre_trend_p_value"]
    assert client.get("/api/v1/studies/0000000000000000/methods",
                      headers=_auth(served["tokens"]["viewer"])).status_code == 404
    assert client.get(f"/api/v1/studies/{h}/methods?version=9", headers=_auth(served["tokens"]["viewer"])).status_code \
        == 404


def test_a_study_of_its_own_design_alone_says_in_one_line_how_to_get_every_method(served: dict[str, Any]) -> None:
    client, doc = served["client"], served["plain"]
    assert doc["methods"] is None
    text = _page(client, "analyst", f"/studies/{doc['study']['hash']}")
    section = text[text.index("<h2>Methods side by side</h2>"):text.index("<h2>How sure</h2>")]
    assert "Only the study's own design ran" in section and "report STUDY --method all" in section
    assert "<table>" not in section
    got = client.get(f"/api/v1/studies/{doc['study']['hash']}/methods",
                     headers=_auth(served["tokens"]["viewer"])).json()
    assert got["ran"] is False and got["rows"] == [] and "--method all" in got["note"]


def test_a_kpi_where_lower_is_better_is_improved_by_a_shorter_cycle_worked_by_hand() -> None:
    def effect(estimate: float, low: float, high: float, biased: bool = False) -> dict[str, Any]:
        return {"estimate": estimate, "ci_low": low, "ci_high": high, "confidence": 0.95, "prob_positive": 0.1,
                "biased": biased, "warnings": ["fewer than 3 cohorts"]}

    doc = {"headline": {"headline_kpi": "sales_cycle_days",
                        "kpis": [{"kpi": "sales_cycle_days", "label": "sales cycle", "unit": "days",
                                  "higher_is_better": False}]},
           "methods": {"recommended": "twfe", "reason": "a randomised holdout", "evidence": {
               "largest_smd_before": -0.31, "largest_smd_covariate": "region", "pre_trends": "no gap found",
               "pre_trend_p_value": 0.0004},
               "results": [
                   {"method": "twfe", "label": "two-way", "effect": effect(-4.0, -6.5, -1.3), "refutations": [
                       {"test": "placebo date", "passed": False, "explanation": "an effect of -2.5 days appears",
                        "estimate": -2.5, "ci_low": -4.0, "ci_high": -1.0}]},
                   {"method": "trend", "label": "trend", "effect": effect(2.0, 0.5, 3.5), "refutations": []},
                   {"method": "psm", "label": "matched", "effect": effect(-1.0, -3.0, 0.0), "refutations": []},
                   {"method": "drdid", "label": "doubly robust", "effect": None, "not_applicable": "no covariates",
                    "refutations": []},
                   {"method": "naive_after", "label": "naive", "effect": effect(-9.0, -12.0, -6.0, biased=True),
                    "refutations": []}]}}
    got = methods_of(doc, study_hash="abc", version=3)
    rows = {r.method: r for r in got.rows}
    # A cycle 4 days shorter, its interval −6.5 to −1.3 days clear of zero: improved.
    assert (rows["twfe"].effect, rows["twfe"].interval, rows["twfe"].verdict) == (
        "−4.0 days", "−6.5 days to −1.3 days", "improved")
    assert rows["twfe"].prob_improvement == pytest.approx(0.9)  # P(effect < 0) = 1 − 0.1
    assert rows["twfe"].refutations[0].explanation == "an effect of −2.5 days appears"
    assert (rows["trend"].effect, rows["trend"].verdict) == ("+2.0 days", "worsened")
    assert rows["psm"].verdict == "not established"  # the interval reaches zero
    assert (rows["drdid"].verdict, rows["drdid"].not_applicable, rows["drdid"].effect) == (
        "not applicable", "no covariates", "—")
    assert rows["naive_after"].verdict == "biased" and rows["naive_after"].biased
    assert got.recommended_label == "two-way" and got.unit == "days" and got.kpi_label == "sales cycle"
    words = {d.name: d.words for d in got.diagnostics}
    assert "largest standardised mean difference is 0.31, on region (0.25 or more" in words["largest_smd_before"]
    assert words["pre_trend_p_value"] == "Parallel trends before training: no gap found (pre-trend test p-value " \
                                         "below 0.001)."
