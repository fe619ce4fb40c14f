"""The dashboard in a real browser: Playwright driving Debian's Chromium against the real server.

The server is ``training-roi serve`` in a subprocess on a free loopback port, serving a small
reported org (its ``result.json`` is the figure the pages must show); Chromium runs headless from
Debian's ``chromium`` package (never a browser downloaded at test time). Without it the tests are
skipped, saying so; CI (``.ci/run``) installs it.

An analyst signs in through the form, finds the study in the programs list, opens it (the credited
ROI shown is the report's, formatted as the product formats percentages), chooses a KPI, the
team grain and a period in the KPI page's form (the rows are the warehouse's teams with a deal won
in the period, counted with SQL, and the months are the period's), then one team of the select
(its rows alone), and signs out. A viewer signs
in and visits every page a viewer may — programs, the study, KPIs at the org and team grains,
data quality — and asking for the rep grain gets the 403 page; no learner's name,
email or CRM id from the report's ``headline.learners`` appears in any of those pages' HTML, while
the analyst's rep page shows the first trained rep's name (so the check can see one). An admin
follows the navigation's Admin link, adds a user through the form (the token shown once then
answers the API, and the new user signs in with the password chosen) and finds the change in the
audit log filtered by its action.

Every page visited is saved as a full-page PNG screenshot, a test artefact, into the folder named
by the environment variable ``TRAINING_ROI_ARTIFACTS`` when it is set (created if missing), else
into pytest's temporary folder for the test; each is checked to be a real PNG of the page's width,
not blank and of non-trivial size.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import urllib.request
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import duckdb
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright

from tests.web.conftest import LEARNER, ReportedOrg
from tests.web.state import CHEAP, serving
from training_roi._format import percent
from training_roi.web.auth import add_user
from training_roi.web.store import Store

CHROMIUM = shutil.which("chromium")
"""Debian's Chromium (the ``chromium`` package), or None where it is not installed."""

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")]

VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
PASSWORDS = {"viewer": "viewer-secret-1", "analyst": "analyst-secret-1", "admin": "admin-secret-1"}
STUDY = "Sales Excellence pilot"
SINCE, UNTIL, LAST_MONTH = date(2024, 7, 1), date(2025, 1, 1), date(2024, 12, 1)
"""The period chosen in the KPI page's form (until not counted): six months inside the simulated org's 14."""


@pytest.fixture(scope="module")
def server(reported_org: ReportedOrg, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``training-roi serve`` on a free loopback port, with a viewer, an analyst and an admin who have passwords."""
    state = tmp_path_factory.mktemp("browser-state") / "state.sqlite"
    store = Store(state, hasher=CHEAP)
    for role, password in PASSWORDS.items():
        add_user(store, role, role, password=password)
    with serving(reported_org.db, state, reported_org.out) as (base, _):
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright."""
    assert CHROMIUM is not None
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies) and its page."""
    context = browser.new_context(viewport=VIEWPORT)
    yield context.new_page()
    context.close()


@pytest.fixture
def artefacts(tmp_path: Path) -> Path:
    """Where the screenshots go: ``$TRAINING_ROI_ARTIFACTS`` when set, else the test's temporary folder."""
    named = os.environ.get("TRAINING_ROI_ARTIFACTS")
    folder = Path(named) if named else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _screenshot(page: Page, folder: Path, name: str) -> Path:
    """Save the whole page as a PNG and check it is one: the page's width, at least a screen high, not blank."""
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000, (name, path.stat().st_size)
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.width == VIEWPORT["width"] and image.height >= VIEWPORT["height"], (name, image.size)
        darkest, lightest = image.convert("L").getextrema()
        assert lightest - darkest > 128, (name, darkest, lightest)  # dark text on a light page
    return path


def _sign_in(page: Page, base: str, role: str) -> None:
    """Sign in through the form, starting from the programs page (which sends an anonymous browser to it)."""
    page.goto(f"{base}/")
    assert page.url == f"{base}/login?next=/"
    page.get_by_label("Name").fill(role)
    page.get_by_label("Password").fill(PASSWORDS[role])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")


def _teams_with_won_deals(db: Path, since: date, until: date) -> set[str]:
    """The team of every rep with a deal won in [since, until): 'team of' its manager's name, counted with SQL."""
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("""
            SELECT DISTINCT 'team of ' || m.name
            FROM crm_opportunity o JOIN crm_user u ON o.owner_id = u.user_id JOIN crm_user m ON u.manager_id = m.user_id
            WHERE o.is_closed AND o.is_won AND NOT o.is_deleted AND o.close_date >= ? AND o.close_date < ?
        """, [since, until]).fetchall()
    return {r[0] for r in rows}


def test_an_analyst_signs_in_opens_the_study_filters_the_kpis_and_signs_out(
        server: str, page: Page, reported_org: ReportedOrg, artefacts: Path) -> None:
    result = reported_org.result
    page.goto(f"{server}/")
    _screenshot(page, artefacts, "analyst-01-sign-in")
    _sign_in(page, server, "analyst")
    credited = percent(Decimal(str(result["headline"]["roi_pct"])))
    row = page.get_by_role("row").filter(has_text=STUDY)
    assert row.count() == 1 and credited in row.inner_text()
    _screenshot(page, artefacts, "analyst-02-programs")

    page.get_by_role("link", name=STUDY).click()
    page.wait_for_url(f"{server}/studies/{result['study']['hash']}")
    figure = page.locator(".fig").filter(has=page.locator(".l", has_text="ROI (credited): the answer"))
    assert figure.locator(".v").inner_text() == credited
    _screenshot(page, artefacts, "analyst-03-study")

    # The drill-down, clicked from the org to one deal: each level carries the answer's interval.
    page.get_by_role("link", name="Drill down").click()
    page.wait_for_url(f"{server}/drill/{result['study']['hash']}")
    org = page.locator("main table tr").nth(1)
    did = result["headline"]["did"]
    interval = f"{did['ci_low'] * 100:+.1f} pts to {did['ci_high'] * 100:+.1f} pts".replace("-", "−")
    assert "the whole org" in org.inner_text() and interval in org.inner_text()
    _screenshot(page, artefacts, "analyst-03a-drill-org")
    page.locator("main table tr td a").first.click()
    page.wait_for_url(lambda url: "/teams/" in url)
    _screenshot(page, artefacts, "analyst-03b-drill-team")
    page.locator("main table tr td a").first.click()
    page.wait_for_url(lambda url: "/reps/" in url)
    assert page.get_by_role("heading", name="Training events").count() == 1
    _screenshot(page, artefacts, "analyst-03c-drill-rep")
    deals = page.locator("main table").last.locator("tr td a")
    assert deals.count() > 0
    for i in range(deals.count()):  # the first deal with attributed touches
        deals.nth(i).click()
        page.wait_for_load_state()
        if "/deals/" in page.url and page.get_by_role("heading", level=1).inner_text().startswith("Deal "):
            break
        page.go_back()
        deals = page.locator("main table").last.locator("tr td a")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Deal ")
    assert page.locator("main table tr").count() > 1  # its touches and their credit
    _screenshot(page, artefacts, "analyst-03d-drill-deal")

    page.get_by_role("link", name="KPIs by month").click()
    page.wait_for_url(f"{server}/kpis")
    page.get_by_label("KPI").select_option("avg_won_deal_size")
    page.get_by_label("grain").select_option("team")
    page.get_by_label("from", exact=True).fill(SINCE.isoformat())
    page.get_by_label("until (not counted)").fill(UNTIL.isoformat())
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(lambda url: url.startswith(f"{server}/kpis?"))
    asked = parse_qs(urlsplit(page.url).query)
    assert {k: asked[k] for k in ("kpi", "grain", "since", "until")} == {
        "kpi": ["avg_won_deal_size"], "grain": ["team"], "since": [SINCE.isoformat()], "until": [UNTIL.isoformat()]}
    table = page.locator("main table")
    assert table.locator("th").first.inner_text() == "team"
    shown = {cell.strip() for cell in table.locator("tr td:first-child").all_inner_texts()}
    assert len(shown) >= 2 and shown == _teams_with_won_deals(reported_org.db, SINCE, UNTIL)
    months = {datetime.strptime(cell.strip().rstrip("*"), "%b %Y").date()
              for cell in table.locator("tr td:nth-child(2)").all_inner_texts()}
    assert min(months) == SINCE and max(months) == LAST_MONTH  # the period chosen, no more
    _screenshot(page, artefacts, "analyst-04-kpis-team")
    # One team of the select: its rows only, the period kept.
    chosen = sorted(shown)[0]
    page.get_by_label(re.compile(r"^team\b")).select_option(label=chosen)  # not the grain's select, set to team
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(lambda url: "team=" in url)
    again = parse_qs(urlsplit(page.url).query)
    assert {k: again[k] for k in ("kpi", "grain", "since", "until")} == {
        k: asked[k] for k in ("kpi", "grain", "since", "until")} and again["team"] != [""]
    one = {cell.strip() for cell in page.locator("main table").locator("tr td:first-child").all_inner_texts()}
    assert one == {chosen}
    _screenshot(page, artefacts, "analyst-04a-kpis-one-team")

    page.goto(f"{server}/kpis?kpi=win_rate&grain=rep")
    assert LEARNER in page.content()  # an analyst reads the reps' names: the viewer's check below can see one
    _screenshot(page, artefacts, "analyst-05-kpis-rep")

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{server}/login?message=signed+out")
    _screenshot(page, artefacts, "analyst-06-signed-out")
    page.goto(f"{server}/")
    assert page.url == f"{server}/login?next=/"  # the session is over


def test_a_viewer_sees_every_aggregate_page_no_person_and_a_403_for_the_reps(
        server: str, page: Page, reported_org: ReportedOrg, artefacts: Path) -> None:
    people = reported_org.people()
    assert LEARNER in people and any("@" in p for p in people)
    _sign_in(page, server, "viewer")
    study = f"/studies/{reported_org.result['study']['hash']}"
    visits: list[tuple[str, str, int]] = [("programs", "/", 200), ("study", study, 200),
                                          ("kpis-org", "/kpis?kpi=win_rate&grain=org", 200),
                                          ("kpis-team", "/kpis?kpi=win_rate&grain=team", 200),
                                          ("quality", "/quality", 200), ("kpis-rep-refused", "/kpis?grain=rep", 403)]
    for i, (name, path, status) in enumerate(visits, start=1):
        response = page.goto(f"{server}{path}")
        assert response is not None and response.status == status, (path, response and response.status)
        html = page.content()
        assert not [p for p in people if p in html], (path, [p for p in people if p in html])
        if status == 200:
            assert "viewer (viewer)" in page.locator("header").inner_text()
        _screenshot(page, artefacts, f"viewer-{i:02d}-{name}")
    assert page.get_by_role("heading", level=1).inner_text() == "403"
    assert "your role (viewer) reads the org and team grains only" in page.content()


def test_the_kpi_form_without_a_period_shows_the_page(server: str, page: Page, artefacts: Path) -> None:
    _sign_in(page, server, "analyst")
    page.goto(f"{server}/kpis")
    page.get_by_label("grain").select_option("team")
    with page.expect_response(lambda r: "/kpis?" in r.url) as answer:
        page.get_by_role("button", name="Show").click()
    page.wait_for_load_state()
    page.screenshot(path=str(artefacts / "analyst-07-kpis-no-period.png"), full_page=True)  # what was shown, either way
    assert answer.value.status == 200, answer.value.status
    assert page.locator("main table th").first.inner_text(timeout=2_000) == "team"


def test_an_admin_adds_a_user_who_signs_in_and_finds_the_change_in_the_audit_log(
        server: str, page: Page, browser: Browser, artefacts: Path) -> None:
    _sign_in(page, server, "admin")
    page.get_by_role("link", name="Admin", exact=True).click()
    page.wait_for_url(f"{server}/admin/users")
    _screenshot(page, artefacts, "admin-01-users")
    page.get_by_label("Name", exact=True).fill("nadia")
    page.get_by_label("Role", exact=True).select_option("analyst")
    page.get_by_label("Password", exact=True).fill("nadia-secret-12")
    page.get_by_label("Password again", exact=True).fill("nadia-secret-12")
    page.get_by_role("button", name="Add the user").click()
    page.wait_for_load_state()
    assert page.locator("#message").inner_text().startswith("added nadia (analyst)")
    assert "it will not be shown again" in page.locator("#token").inner_text()
    token = page.locator("#token code").inner_text()
    nadia = page.get_by_role("row").filter(has=page.get_by_role("cell", name="nadia", exact=True))
    assert nadia.count() == 1 and "analyst" in nadia.inner_text() and "set" in nadia.inner_text()
    _screenshot(page, artefacts, "admin-02-user-added")

    request = urllib.request.Request(f"{server}/api/v1/programs", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert [p["name"] for p in json.loads(answer.read())] == [STUDY]
    context = browser.new_context(viewport=VIEWPORT)
    fresh = context.new_page()
    fresh.goto(f"{server}/login")
    fresh.get_by_label("Name").fill("nadia")
    fresh.get_by_label("Password").fill("nadia-secret-12")
    fresh.get_by_role("button", name="Sign in").click()
    fresh.wait_for_url(f"{server}/")
    assert "nadia (analyst)" in fresh.locator("header").inner_text()
    assert fresh.get_by_role("link", name="Admin", exact=True).count() == 0  # an analyst has no admin area
    context.close()

    page.get_by_role("link", name="The audit log →").click()
    page.wait_for_url(f"{server}/admin/audit")
    page.get_by_label("action").select_option("user_added")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(lambda url: "action=user_added" in url)
    rows = [r.split("\t") for r in page.locator("main table tr").all_inner_texts()[1:]]
    assert len(rows) == len(PASSWORDS) + 1 and {r[2] for r in rows} == {"user_added"}  # the fixture's and nadia
    assert (rows[0][1], rows[0][3], rows[0][4]) == ("admin", "nadia", "role analyst")  # newest first: who, whom
    _screenshot(page, artefacts, "admin-03-audit-filtered")
