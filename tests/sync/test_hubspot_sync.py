"""Syncing from HubSpot (a local account speaking the CRM API): equal to a file ingest, incremental, faults, kills."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.sync import crm
from tests.sync.hubspot_server import CAP, Portal, serve
from training_roi.errors import SyncConfigError
from training_roi.sync.config import HubSpotConfig

TOKEN = "pat-na1-" + uuid.uuid4().hex  # random, so finding any of them in any output can only mean a leak
CLIENT_ID = "cid-" + uuid.uuid4().hex
SECRET = "cs-" + uuid.uuid4().hex
REFRESH = "rt-" + uuid.uuid4().hex
TABLES = {"owners": "crm_user", "companies": "crm_account", "contacts": "crm_contact", "deals": "crm_opportunity"}


@pytest.fixture
def portal(exports: Path) -> Iterator[Portal]:
    p = Portal(TOKEN, CLIENT_ID, SECRET, REFRESH)
    p.seed(exports)
    yield from serve(p)


def env() -> dict[str, str]:
    return {"HUBSPOT_TOKEN": TOKEN, "HUBSPOT_CLIENT_SECRET": SECRET, "HUBSPOT_REFRESH_TOKEN": REFRESH}


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in env().items():
        monkeypatch.setenv(k, v)


def write_config(path: Path, portal: Portal, *, oauth: bool = False, **settings: Any) -> Path:
    auth = ({"client_id": CLIENT_ID, "client_secret_env": "HUBSPOT_CLIENT_SECRET",
             "refresh_token_env": "HUBSPOT_REFRESH_TOKEN"} if oauth else {"access_token_env": "HUBSPOT_TOKEN"})
    source = {"name": "hs", "kind": "hubspot", "base_url": portal.url, "auth": auth, "backoff": 0.01,
              "clock_skew": 0, **settings}
    path.write_text(yaml.safe_dump({"sources": [source]}), encoding="utf-8")
    return path


def run(config: Path, db: Path, sleeps: list[float] | None = None) -> Any:
    return crm.sync_once(config, db, sleeps)


def tables(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every CRM table a HubSpot sync fills, without where its rows were read from, sorted."""
    return crm.crm_tables(db, tuple(TABLES.values()))


def ingested(portal: Portal, folder: Path) -> dict[str, list[tuple[Any, ...]]]:
    """The tables a file ingest of the account's current records, exported, gives."""
    return crm.file_ingest(portal, folder, tuple(TABLES.values()))


sql = crm.sql


def new(info: Any) -> dict[str, int]:
    return {s.source: s.statements for s in info.sources if s.statements}


def test_a_sync_gives_the_warehouse_a_file_ingest_of_the_same_records_gives(portal: Portal, tmp_path: Path):
    db = tmp_path / "roi.duckdb"
    deals = list(portal.records["deals"])
    for obj in ("deals", "companies", "contacts"):  # deleted records, in the recycle bin
        for rid in list(portal.records[obj])[3:5]:
            portal.archive(obj, rid)
    # A deal with a second company, not primary: its account stays the primary one.
    second = portal.records["deals"][deals[10]]
    second.companies.append(next(c for c in portal.records["companies"] if c != second.row["AccountId"]))
    info = run(write_config(tmp_path / "sync.yaml", portal), db)
    assert info.ok, [s.error for s in info.sources]
    expected = ingested(portal, tmp_path / "export")
    got = tables(db)
    assert {t: len(r) for t, r in got.items()} == {t: len(r) for t, r in expected.items()}
    assert got == expected
    # Figures worked out from the account's own rows: won deals, their amount, deleted records, inactive users.
    live = [r.row for r in portal.records["deals"].values() if r.archived_at is None]
    won = [r for r in live if r["StageName"] == "Closed Won"]
    assert sql(db, "SELECT count(*) AS n, sum(amount) AS total FROM crm_opportunity "
                   "WHERE is_won AND is_closed AND NOT is_deleted") == [
        {"n": len(won), "total": sum(Decimal(r["Amount"]) for r in won)}]
    assert sql(db, "SELECT count(*) AS n FROM crm_opportunity WHERE is_deleted")[0]["n"] == 2
    assert sql(db, f"SELECT account_id FROM crm_opportunity WHERE opportunity_id = '{deals[10]}'") == [
        {"account_id": second.row["AccountId"]}]
    inactive = [r for r in portal.records["owners"].values() if r.archived_at is not None]
    assert sql(db, "SELECT user_id FROM crm_user WHERE NOT is_active") == [{"user_id": r.row["Id"]} for r in inactive]
    assert sql(db, "SELECT count(*) AS n FROM crm_opportunity o JOIN crm_user u ON o.owner_id = u.user_id")[0]["n"] \
        == len(portal.records["deals"]) > 0
    # One shape of search per object, bounded by the chain's horizon, from the start.
    for obj in ("companies", "contacts", "deals"):
        first = portal.searches(obj)[0]
        assert [f["operator"] for f in first["filterGroups"][0]["filters"]] == ["LTE"]
        assert first["sorts"] == [{"propertyName": "lastmodifieddate" if obj == "contacts" else "hs_lastmodifieddate",
                                   "direction": "ASCENDING"}]
    # 258 deals, 2 archived, in pages of 200: two searches; companies and contacts one each.
    assert len(portal.searches("deals")) == 2
    marks = sql(db, "SELECT source FROM sync_state ORDER BY source")
    assert [m["source"] for m in marks] == ["hs.archived_companies", "hs.archived_contacts", "hs.archived_deals",
                                            "hs.companies", "hs.contacts", "hs.deals"]

    again = run(write_config(tmp_path / "sync.yaml", portal), db)
    assert again.ok
    # Nothing new but the owners, which are read whole at every sync.
    assert new(again) == {"hs.owners": len(portal.records["owners"])}
    assert tables(db) == expected
    for obj in ("companies", "contacts", "deals"):
        assert [f["operator"] for f in portal.searches(obj)[-1]["filterGroups"][0]["filters"]] == ["GT", "LTE"]


def test_changes_and_deletions_arrive_in_the_next_sync(portal: Portal, tmp_path: Path):
    db = tmp_path / "roi.duckdb"
    config = write_config(tmp_path / "sync.yaml", portal)
    assert run(config, db).ok
    # The deal modified last: it sits at the watermark, among the records skipped when asked again.
    deal = max(portal.records["deals"].values(), key=lambda r: (r.modified, r.row["Id"])).row["Id"]
    contact = list(portal.records["contacts"])[7]
    owner = next(r for r, rec in portal.records["owners"].items() if rec.archived_at is None)
    portal.touch("deals", deal, StageName="Closed Won", IsClosed="true", IsWon="true", Probability="100",
                 Amount="99999.50", CloseDate="2025-06-02")
    portal.archive("contacts", contact)
    for rid in list(portal.records["contacts"])[20:130]:  # more than a page of the archived list
        portal.archive("contacts", rid)
    portal.archive("owners", owner)
    lists = sum(kind == "list" and obj == "contacts" for kind, obj, _q in portal.log)
    portal.touch("companies", "9100000001", Name="New Company", IsDeleted="false",
                 CreatedDate="2025-06-02T08:00:00.000Z")
    info = run(config, db)
    assert info.ok
    assert new(info) == {"hs.owners": len(portal.records["owners"]), "hs.deals": 1, "hs.companies": 1,
                         "hs.archived_contacts": 111}
    assert sum(kind == "list" and obj == "contacts" for kind, obj, _q in portal.log) - lists == 2
    assert tables(db) == ingested(portal, tmp_path / "export")
    assert sql(db, f"SELECT stage_name, is_won, amount FROM crm_opportunity WHERE opportunity_id = '{deal}'") == [
        {"stage_name": "Closed Won", "is_won": True, "amount": Decimal("99999.50")}]
    assert sql(db, f"SELECT is_active FROM crm_user WHERE user_id = '{owner}'") == [{"is_active": False}]


def test_a_merged_record_is_deleted_and_its_revenue_counted_once(portal: Portal, tmp_path: Path):
    """Two won deals merged into one: HubSpot no longer lists the merged deal, live or archived; the sync deletes it."""
    db = tmp_path / "roi.duckdb"
    config = write_config(tmp_path / "sync.yaml", portal)
    assert run(config, db).ok
    won = [rid for rid, r in portal.records["deals"].items() if r.row["IsWon"] == "true" and r.archived_at is None]
    primary, other, third = won[:3]
    portal.merge("deals", primary, other)
    portal.merge("deals", third, primary)  # merged twice: both ids go with it
    info = run(config, db)
    assert info.ok and new(info) == {"hs.owners": len(portal.records["owners"]), "hs.deals": 3}  # one and two deletions
    assert sql(db, f"SELECT opportunity_id, is_deleted FROM crm_opportunity WHERE opportunity_id IN "
                   f"('{primary}', '{other}', '{third}') ORDER BY opportunity_id") == sorted(
        [{"opportunity_id": primary, "is_deleted": True}, {"opportunity_id": other, "is_deleted": True},
         {"opportunity_id": third, "is_deleted": False}], key=lambda r: str(r["opportunity_id"]))
    # The won revenue the warehouse holds is the account's, worked out from its live deals alone.
    live = [r.row for r in portal.records["deals"].values() if r.archived_at is None and r.row["IsWon"] == "true"]
    assert sql(db, "SELECT count(*) AS n, sum(amount) AS amount FROM crm_opportunity "
                   "WHERE is_won AND NOT is_deleted") == [
        {"n": len(live), "amount": sum(Decimal(r["Amount"]) for r in live)}]
    assert new(run(config, db)) == {"hs.owners": len(portal.records["owners"])}  # and nothing again


def test_more_modified_records_than_one_search_sends_arrive_each_once(portal: Portal, tmp_path: Path):
    db = tmp_path / "roi.duckdb"
    config = write_config(tmp_path / "sync.yaml", portal, objects=["deals"], deletions=False)
    assert run(config, db).ok
    template = next(iter(portal.records["deals"].values())).row
    # 10,250 deals modified in a bulk import: three share each millisecond, so ties straddle every page.
    start = max(r.modified for r in portal.records["deals"].values()) + 10
    with portal.lock:
        for i in range(CAP + 250):
            rid = str(18_000_000_000 + i)
            portal.records["deals"][rid] = type(next(iter(portal.records["deals"].values())))(
                {**template, "Id": rid, "Name": f"Imported deal {i}", "Amount": str(1000 + i)}, start + i // 3)
    before = len(portal.searches("deals"))
    info = run(config, db)
    assert info.ok, [s.error for s in info.sources]
    assert new(info) == {"hs.deals": CAP + 250}
    searches = portal.searches("deals")[before:]
    # Paged by key: every page a new search from the last modification time reached, never an offset.
    assert searches and all("after" not in s for s in searches)
    assert len(searches) >= (CAP + 250) // searches[0]["limit"]
    assert sql(db, "SELECT count(*) AS n, sum(amount) AS total FROM crm_opportunity WHERE name LIKE 'Imported deal %'"
               ) == [{"n": CAP + 250, "total": sum(1000 + i for i in range(CAP + 250))}]
    assert tables(db)["crm_opportunity"] == ingested(portal, tmp_path / "export")["crm_opportunity"]
    assert new(run(config, db)) == {}


def test_ties_in_a_new_order_at_every_request_are_each_loaded_once(portal: Portal, tmp_path: Path):
    db = tmp_path / "roi.duckdb"
    config = write_config(tmp_path / "sync.yaml", portal, objects=["deals"], deletions=False, page_size=25)
    assert run(config, db).ok
    template = next(iter(portal.records["deals"].values())).row
    kind = type(next(iter(portal.records["deals"].values())))
    # 240 deals, twelve to a millisecond, so every page ends inside a run of ties.
    start = max(r.modified for r in portal.records["deals"].values()) + 10
    with portal.lock:
        for i in range(240):
            rid = str(18_000_000_000 + i)
            portal.records["deals"][rid] = kind({**template, "Id": rid, "Name": f"Tied deal {i}",
                                                 "Amount": str(500 + 7 * i)}, start + i // 12)
    tied = [r.row for r in portal.records["deals"].values() if r.row["Name"].startswith("Tied deal ")]
    portal.shuffle_ties = True
    before = len(portal.searches("deals"))
    info = run(config, db)
    assert info.ok, [s.error for s in info.sources]
    assert new(info) == {"hs.deals": len(tied)}
    assert sql(db, "SELECT count(*) AS n, count(DISTINCT opportunity_id) AS ids, sum(amount) AS total "
                   "FROM crm_opportunity WHERE name LIKE 'Tied deal %'") == [
        {"n": len(tied), "ids": len(tied), "total": sum(int(r["Amount"]) for r in tied)}]
    assert sql(db, "SELECT count(*) AS n FROM quarantine")[0]["n"] == 0
    assert tables(db)["crm_opportunity"] == ingested(portal, tmp_path / "export")["crm_opportunity"]
    assert all("after" not in s for s in portal.searches("deals")[before:])
    assert new(run(config, db)) == {}


def test_a_record_changed_between_two_pages_arrives_once_in_its_latest_state(portal: Portal, tmp_path: Path):
    db = tmp_path / "roi.duckdb"
    config = write_config(tmp_path / "sync.yaml", portal, objects=["deals"], page_size=50)
    ids = sorted(portal.records["deals"], key=lambda i: (portal.records["deals"][i].modified, int(i)))
    seen, gone, ahead = ids[5], ids[8], ids[120]

    def change(obj: str, offset: int) -> None:
        if obj == "deals" and len(portal.searches("deals")) == 2:
            portal.after_page = None
            # After the second page: one record sent moves to the end, one sent is deleted (both shift the
            # records not yet sent towards the start), one not yet sent moves, one is new.
            portal.touch("deals", seen, StageName="Negotiation/Review", IsClosed="false", IsWon="false",
                         Probability="90")
            portal.archive("deals", gone)
            portal.touch("deals", ahead, StageName="Closed Won", IsWon="true", IsClosed="true", Probability="100")
            portal.touch("deals", "17900000001", **{**portal.records["deals"][ids[0]].row, "Id": "17900000001",
                                                    "Name": "Late deal"})

    portal.after_page = change
    first = run(config, db)
    assert first.ok
    # Each page was a new search from the last modification time reached: the changes moved no offset.
    assert all("after" not in s for s in portal.searches("deals"))
    # Each record at most once per load: nothing quarantined as a changed duplicate.
    assert sql(db, "SELECT count(*) AS n FROM quarantine")[0]["n"] == 0
    assert run(config, db).ok
    assert tables(db)["crm_opportunity"] == ingested(portal, tmp_path / "export")["crm_opportunity"]
    assert sql(db, f"SELECT opportunity_id, stage_name, is_deleted FROM crm_opportunity WHERE opportunity_id IN "
                   f"('{seen}', '{gone}', '{ahead}') ORDER BY opportunity_id") == sorted([
        {"opportunity_id": seen, "stage_name": "Negotiation/Review", "is_deleted": False},
        {"opportunity_id": gone, "stage_name": portal.records["deals"][gone].row["StageName"], "is_deleted": True},
        {"opportunity_id": ahead, "stage_name": "Closed Won", "is_deleted": False}],
        key=lambda r: r["opportunity_id"])


def test_faults_are_retried_and_the_result_is_the_same(portal: Portal, tmp_path: Path):
    db = tmp_path / "roi.duckdb"
    config = write_config(tmp_path / "sync.yaml", portal, oauth=True, objects=["owners", "deals"],
                          page_size=100, timeout=1, retries=6)
    portal.token_life = 4  # every token expires after four requests
    portal.faults = [("secondly", {"Retry-After": "1"}), ("secondly", {}), ("secondly", {}), None, "truncate",
                     "expire", (503, {"Retry-After": "0"}), ("sleep", 2.0), (502, {}), "truncate"]
    sleeps: list[float] = []
    info = run(config, db, sleeps)
    assert info.ok, [s.error for s in info.sources]
    assert not portal.faults
    assert portal.token_requests >= 4  # fetched again as each token expired, never an error
    # Retry-After honoured (1 s), otherwise backoff doubling from 0.01 s; the late answer was given up on.
    assert sleeps[:3] == [1.0, 0.02, 0.04]
    expected = ingested(portal, tmp_path / "export")
    got = tables(db)
    assert got["crm_opportunity"] == expected["crm_opportunity"]
    assert got["crm_user"] == expected["crm_user"]


def test_the_daily_limit_stops_the_sync_without_a_retry(portal: Portal, tmp_path: Path):
    db = tmp_path / "roi.duckdb"
    portal.faults = [None, None, ("daily", None)]  # the owners' two lists, then the companies' first search
    info = run(write_config(tmp_path / "sync.yaml", portal, objects=["owners", "companies", "deals"]), db)
    assert [s.status for s in info.sources] == ["ok", "failed", "failed", "failed", "failed"]
    assert "policy DAILY" in (info.sources[1].error or "")
    assert all("daily limit is used up" in (s.error or "") for s in info.sources[1:])
    assert portal.used == 3  # the request refused was not sent again, and no other source sent one

    # Before its share of the day is used, the sync stops by itself.
    portal.allowed, portal.used = 1000, 795
    info = run(write_config(tmp_path / "sync.yaml", portal, objects=["companies", "deals"], limit_share=0.8), db)
    assert not info.ok
    assert any("limit_share 0.8" in (s.error or "") for s in info.sources)
    assert portal.used == 800
    assert sql(db, "SELECT status FROM sync_run WHERE source = 'hs.archived_deals'")[-1]["status"] == "failed"


def sync_cli(config: Path, db: Path, extra: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return crm.sync_cli(config, db, {**env(), **(extra or {})})


def test_the_daily_limit_fails_the_command_with_a_clear_message(portal: Portal, tmp_path: Path):
    portal.used = portal.allowed  # the day's requests are used up by other integrations
    proc = sync_cli(write_config(tmp_path / "sync.yaml", portal, objects=["deals"], deletions=False),
                    tmp_path / "roi.duckdb")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1
    assert "daily limit is used up" in err and "Traceback" not in out + err
    assert portal.used == portal.allowed + 1


def test_secrets_never_appear_in_output_nor_a_traceback(portal: Portal, tmp_path: Path):
    db = tmp_path / "roi.duckdb"
    config = write_config(tmp_path / "sync.yaml", portal, oauth=True, objects=["companies"])
    portal.refresh_token = "another"  # the account no longer accepts ours
    proc = sync_cli(config, db)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1
    assert "BAD_REFRESH_TOKEN" in out + err and "Traceback" not in out + err
    for secret in (SECRET, REFRESH, TOKEN):
        assert secret not in out + err
    # A private app token HubSpot refuses: the message says where it comes from, not what it is.
    proc = sync_cli(write_config(tmp_path / "private.yaml", portal, objects=["companies"]), db,
                    {"HUBSPOT_TOKEN": TOKEN + "-revoked"})
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1 and "HUBSPOT_TOKEN" in out + err and TOKEN not in out + err
    # A secret written in the file is refused without being echoed.
    text = config.read_text().replace("refresh_token_env: HUBSPOT_REFRESH_TOKEN", f"refresh_token: {REFRESH}")
    config.write_text(text)
    proc = sync_cli(config, db)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 2 and REFRESH not in out + err and "Traceback" not in out + err
    for secret in (SECRET, REFRESH, TOKEN):
        assert secret not in db.read_bytes().decode("latin-1")


def test_killed_mid_page_then_run_again_gives_the_uninterrupted_warehouse(portal: Portal, tmp_path: Path):
    db = tmp_path / "roi.duckdb"
    config = write_config(tmp_path / "sync.yaml", portal, objects=["companies", "deals"], page_size=100,
                          deletions=False)
    portal.faults = [None, None, ("hold", None)]  # the companies' search, the deals' first page, then held
    crm.kill_while_held(portal, sync_cli(config, db))
    proc = sync_cli(config, db)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    # The second sync went on through the stopped one's token rather than searching again from the start.
    deals = portal.searches("deals")
    bounds = [[f["operator"] for f in s["filterGroups"][0]["filters"]] for s in deals]
    assert bounds[0] == ["LTE"] and len(bounds) > 1 and all(b == ["GTE", "LTE"] for b in bounds[1:])
    assert deals[1]["filterGroups"][0]["filters"][1] == deals[0]["filterGroups"][0]["filters"][0]
    expected = ingested(portal, tmp_path / "export")
    got = tables(db)
    assert got["crm_account"] == expected["crm_account"]
    assert got["crm_opportunity"] == expected["crm_opportunity"]
    assert sql(db, "SELECT count(*) AS n FROM quarantine")[0]["n"] == 0


def _hubspot(**settings: Any) -> dict[str, Any]:
    return {"name": "hs", "kind": "hubspot", "auth": {"access_token_env": "HUBSPOT_TOKEN"}, **settings}


@pytest.mark.parametrize(("change", "field"), [
    ({"objects": ["deals", "tickets"]}, "sources[0].objects"),
    ({"page_size": 500}, "sources[0].page_size"),
    ({"limit_share": 1.5}, "sources[0].limit_share"),
    ({"deletions": "yes"}, "sources[0].deletions"),
    ({"base_url": "api.hubapi.com"}, "sources[0].base_url"),
    ({"auth": {}}, "sources[0].auth.access_token"),
    ({"auth": {"access_token": "pat-na1-x"}}, "sources[0].auth.access_token"),
    ({"auth": {"client_id": "x", "refresh_token_env": "R"}}, "sources[0].auth.client_secret"),
    ({"auth": {"access_token_env": "T", "refresh_token_env": "R"}}, "sources[0].auth"),
])
def test_each_mistake_in_a_hubspot_source_names_its_field(tmp_path: Path, change: dict[str, Any], field: str):
    caught = crm.config_source(tmp_path, _hubspot(**change))
    assert isinstance(caught, SyncConfigError) and f"{field}:" in str(caught)


def test_a_hubspot_source_defaults_to_every_object_and_the_public_api(tmp_path: Path):
    source = crm.config_source(tmp_path, _hubspot())
    assert isinstance(source, HubSpotConfig)
    assert source.objects == ("owners", "companies", "contacts", "deals") and source.deletions
    assert source.base_url == "https://api.hubapi.com" and source.auth.method == "private_app"
    assert source.page_size == 200 and source.limit_share == 0.8
