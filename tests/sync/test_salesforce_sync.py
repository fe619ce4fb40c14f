"""Syncing from Salesforce (a local org speaking the REST API): equal to a file ingest, incremental, faults, kills."""

from __future__ import annotations

import csv
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import orjson
import pytest
import yaml
from keyring.backend import KeyringBackend

from tests.sync import crm
from tests.sync.salesforce_server import Org, serve
from training_roi.errors import SyncConfigError
from training_roi.ingest.sources import SOURCES
from training_roi.sync.config import SalesforceConfig

CLIENT_ID = "cid-" + uuid.uuid4().hex
SECRET = "cs-" + uuid.uuid4().hex  # random, so finding either in any output can only mean a leak
REFRESH = "rt-" + uuid.uuid4().hex
CRM_TABLES = ("crm_user", "crm_account", "crm_contact", "crm_opportunity", "crm_opportunity_history", "crm_lead",
              "crm_activity", "crm_case")


@pytest.fixture
def org(exports: Path) -> Iterator[Org]:
    o = Org(CLIENT_ID, SECRET, REFRESH)
    o.seed(exports)
    yield from serve(o)


def env() -> dict[str, str]:
    return {"SF_CLIENT_ID": CLIENT_ID, "SF_CLIENT_SECRET": SECRET, "SF_REFRESH_TOKEN": REFRESH}


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in env().items():
        monkeypatch.setenv(k, v)


def write_config(path: Path, org: Org, **settings: Any) -> Path:
    source = {"name": "sf", "kind": "salesforce", "instance_url": org.url, "api_version": "62.0",
              "auth": {"grant": "refresh_token", "client_id_env": "SF_CLIENT_ID",
                       "client_secret_env": "SF_CLIENT_SECRET", "refresh_token_env": "SF_REFRESH_TOKEN"},
              "page_size": 200, "backoff": 0.01, "clock_skew": 0, **settings}
    path.write_text(yaml.safe_dump({"sources": [source]}), encoding="utf-8")
    return path


def run(config: Path, db: Path) -> Any:
    """One sync, in this process, as the command runs it."""
    return crm.sync_once(config, db)


def tables(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every CRM table's rows without where they were read from, sorted."""
    return crm.crm_tables(db, CRM_TABLES)


def ingested(org: Org, folder: Path) -> dict[str, list[tuple[Any, ...]]]:
    """The CRM tables a file ingest of the org's current data, exported, gives."""
    return crm.file_ingest(org, folder, CRM_TABLES)


count = crm.sql


def test_a_sync_gives_the_warehouse_a_file_ingest_of_the_same_records_gives(org: Org, exports: Path,
                                                                            tmp_path: Path):
    db = tmp_path / "roi.duckdb"
    for obj in ("Lead", "Opportunity"):  # records in the recycle bin, as an export with IsDeleted shows them
        for row in list(org.tables[obj].values())[3:5]:
            row["IsDeleted"] = "true"
    info = run(write_config(tmp_path / "sync.yaml", org), db)
    assert info.ok, [s.error for s in info.sources]
    expected = ingested(org, tmp_path / "export")
    got = tables(db)
    assert {t: len(r) for t, r in got.items()} == {t: len(r) for t, r in expected.items()}
    assert got == expected
    # Deleted records arrived through queryAll and are marked as the export marks them.
    kept = {"Account": "crm_account", "Contact": "crm_contact", "Opportunity": "crm_opportunity",
            "OpportunityHistory": "crm_opportunity_history", "Lead": "crm_lead", "Case": "crm_case"}
    deleted = sum(count(db, f"SELECT count(*) AS n FROM {t} WHERE is_deleted")[0]["n"] for t in kept.values())
    assert deleted == sum(r.get("IsDeleted") == "true" for o in kept for r in org.tables[o].values()) > 0
    # One shape of query per object, from the start; 258 opportunities in pages of 200.
    assert all(q.endswith("ORDER BY SystemModstamp, Id") and "WHERE" not in q for q in org.queries())
    assert sum(1 for kind, c in org.log if kind == "more" and c) >= 1
    # A watermark for each object that holds records (Event, Campaign and CampaignMember are empty).
    marks = count(db, "SELECT source FROM sync_state ORDER BY source")
    assert [m["source"] for m in marks] == sorted(f"sf.{o}" for o, t in org.tables.items() if t)

    before = org.used
    again = run(write_config(tmp_path / "sync.yaml", org), db)
    assert again.ok and sum(s.statements for s in again.sources) == 0
    assert tables(db) == expected
    second = org.queries()[-11:]
    assert all(("WHERE SystemModstamp > " in q) == bool(org.tables[q.split(" FROM ")[1].split()[0]])
               for q in second)
    assert org.used - before == 22  # a describe and one query for each of the 11 objects


def test_changes_and_deletions_arrive_in_the_next_sync(org: Org, tmp_path: Path):
    db = tmp_path / "roi.duckdb"
    config = write_config(tmp_path / "sync.yaml", org)
    assert run(config, db).ok
    # The opportunity modified last: it sits at the watermark, among the records skipped when asked again.
    opp = max(org.tables["Opportunity"].values(), key=lambda r: (r["SystemModstamp"], r["Id"]))["Id"]
    contact = next(r for r, row in org.tables["Contact"].items() if row["IsDeleted"] == "false")
    org.touch("Opportunity", opp, StageName="Closed Won", IsClosed="true", IsWon="true", Amount="99999.50")
    org.delete("Contact", contact)
    org.touch("Account", "001Dn0000NEWACCT1", Name="New Account", IsDeleted="false",
              CreatedDate="2025-06-02T08:00:00.000Z")
    info = run(config, db)
    assert info.ok
    assert {s.source: s.statements for s in info.sources if s.statements} == {
        "sf.Opportunity": 1, "sf.Contact": 1, "sf.Account": 1}
    assert tables(db) == ingested(org, tmp_path / "export")
    assert count(db, f"SELECT stage_name, is_deleted FROM crm_opportunity WHERE opportunity_id = '{opp}'") == [
        {"stage_name": "Closed Won", "is_deleted": False}]


def test_a_record_changed_between_two_pages_arrives_once_in_its_latest_state(org: Org, tmp_path: Path):
    db = tmp_path / "roi.duckdb"
    config = write_config(tmp_path / "sync.yaml", org, objects=["Opportunity"])
    ids = sorted(org.tables["Opportunity"], key=lambda i: (org.tables["Opportunity"][i]["SystemModstamp"], i))
    seen, ahead = ids[5], ids[210]

    def change(obj: str, offset: int) -> None:
        if obj == "Opportunity" and offset == 0:
            org.after_page = None
            # One record already sent moves past the page boundary, one not yet sent moves too, one is new.
            org.touch("Opportunity", seen, StageName="Negotiation")
            org.touch("Opportunity", ahead, StageName="Closed Won", IsWon="true", IsClosed="true")
            org.touch("Opportunity", "006Dn0000NEWOPP01", StageName="Prospecting", IsDeleted="false",
                      Name="Late deal")

    org.after_page = change
    assert run(config, db).ok
    assert run(config, db).ok
    expected = ingested(org, tmp_path / "export")
    assert tables(db)["crm_opportunity"] == expected["crm_opportunity"]
    assert count(db, "SELECT count(*) AS n FROM quarantine")[0]["n"] == 0
    rows = count(db, f"SELECT stage_name FROM crm_opportunity WHERE opportunity_id IN ('{seen}', '{ahead}') "
                     "ORDER BY opportunity_id")
    assert sorted(r["stage_name"] for r in rows) == sorted(["Negotiation", "Closed Won"])


def test_faults_are_retried_and_the_result_is_the_same(org: Org, tmp_path: Path):
    db = tmp_path / "roi.duckdb"
    config = write_config(tmp_path / "sync.yaml", org, objects=["Opportunity", "OpportunityHistory"], timeout=1,
                          retries=6)
    org.token_life = 3  # every token expires after three requests
    org.faults = [(429, {"Retry-After": "1"})] * 4 + ["truncate", None, (503, {"Retry-After": "0"}),
                                                     ("sleep", 2.0), "truncate"]
    info = run(config, db)
    assert info.ok, [s.error for s in info.sources]
    assert not org.faults
    assert org.token_requests >= 4  # refreshed as each token expired, never an error
    expected = ingested(org, tmp_path / "export")
    got = tables(db)
    assert got["crm_opportunity"] == expected["crm_opportunity"]
    assert got["crm_opportunity_history"] == expected["crm_opportunity_history"]


def test_the_daily_limit_stops_the_sync_without_a_retry_loop(org: Org, tmp_path: Path):
    db = tmp_path / "roi.duckdb"
    org.used = org.allowed = 5  # the day's requests are used up by other integrations
    info = run(write_config(tmp_path / "sync.yaml", org, objects=["Opportunity"], limit_share=1), db)
    assert not info.ok
    assert "REQUEST_LIMIT_EXCEEDED" in (info.sources[0].error or "")
    assert org.used == 6  # the request refused was not sent again

    org.allowed, org.used = 100, 70
    info = run(write_config(tmp_path / "sync.yaml", org, objects=["Account", "Opportunity"], limit_share=0.72), db)
    assert [s.status for s in info.sources] == ["ok", "failed"]
    assert "limit_share 0.72" in (info.sources[1].error or "")
    assert org.used == 72  # Account's describe and query; nothing sent for Opportunity
    assert count(db, "SELECT status FROM sync_run WHERE source = 'sf.Opportunity'")[-1]["status"] == "failed"


def sync_cli(config: Path, db: Path, extra: dict[str, str] | None = None, *args: str) -> subprocess.Popen[str]:
    return crm.sync_cli(config, db, {**env(), **(extra or {})}, *args)


def kill_when_held(config: Path, db: Path, org: Org) -> None:
    """Start a sync, kill it (``kill -9``) while the org holds the request the test's faults hold, let the org go."""
    crm.kill_while_held(org, sync_cli(config, db))


def test_secrets_never_appear_in_output_nor_a_traceback(org: Org, tmp_path: Path):
    db = tmp_path / "roi.duckdb"
    config = write_config(tmp_path / "sync.yaml", org, objects=["Account"])
    org.refresh_token = "another"  # the org no longer accepts ours
    proc = sync_cli(config, db)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1
    assert "invalid_grant" in out + err and "Traceback" not in out + err
    for secret in (SECRET, REFRESH):
        assert secret not in out + err
    # A secret written in the file is refused without being echoed.
    text = config.read_text().replace("refresh_token_env: SF_REFRESH_TOKEN", f"refresh_token: {REFRESH}")
    config.write_text(text)
    proc = sync_cli(config, db)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 2 and REFRESH not in out + err and "Traceback" not in out + err
    for secret in (SECRET, REFRESH):
        assert secret not in db.read_bytes().decode("latin-1")


def test_killed_mid_page_then_run_again_gives_the_uninterrupted_warehouse(org: Org, tmp_path: Path):
    db = tmp_path / "roi.duckdb"
    config = write_config(tmp_path / "sync.yaml", org, objects=["Account", "OpportunityHistory"])
    org.faults = [None, None, ("hold", None)]  # Account's query, OpportunityHistory's first page, then held
    crm.kill_while_held(org, sync_cli(config, db))
    proc = sync_cli(config, db)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    # The second sync went on through the stopped one's cursor rather than asking again from the start.
    assert sum(" FROM OpportunityHistory " in q for q in org.queries()) == 1
    expected = ingested(org, tmp_path / "export")
    got = tables(db)
    assert got["crm_account"] == expected["crm_account"]
    assert got["crm_opportunity_history"] == expected["crm_opportunity_history"]
    assert count(db, "SELECT count(*) AS n FROM quarantine")[0]["n"] == 0


def test_a_stopped_sync_whose_next_page_link_expired_pulls_again_from_what_it_loaded(org: Org, tmp_path: Path):
    db = tmp_path / "roi.duckdb"
    config = write_config(tmp_path / "sync.yaml", org, objects=["OpportunityHistory"])
    org.faults = [None, None, ("hold", None)]  # the query, its second page, then the third is held
    kill_when_held(config, db, org)
    org.cursors.clear()  # the org has since closed the query's cursor: the kept link answers INVALID_QUERY_LOCATOR
    proc = sync_cli(config, db, None, "--json")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    (source,) = orjson.loads(out)["sync"]["sources"]
    assert any("no longer answered" in n for n in source["notes"]), source["notes"]
    # The pages fetched before the kill were loaded, and the object asked for again from their watermark.
    queries = [q for q in org.queries() if " FROM OpportunityHistory " in q]
    assert len(queries) == 2 and "WHERE SystemModstamp >" in queries[1]
    assert tables(db)["crm_opportunity_history"] == ingested(org, tmp_path / "export")["crm_opportunity_history"]


class MemoryKeyring(KeyringBackend):
    """A keyring held in memory, standing in for the system's."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        del self.entries[(service, username)]


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    before = keyring.get_keyring()
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    yield ring
    keyring.set_keyring(before)


def test_secrets_read_from_a_keyring_authenticate_and_a_missing_entry_is_named(org: Org, exports: Path, tmp_path: Path,
                                                                               memory_keyring: MemoryKeyring,
                                                                               monkeypatch: pytest.MonkeyPatch):
    for variable in env():
        monkeypatch.delenv(variable)  # only the keyring holds them
    auth = {"grant": "refresh_token", "client_id": CLIENT_ID,
            "client_secret_keyring": {"service": "training-roi", "username": "sf-secret"},
            "refresh_token_keyring": {"service": "training-roi", "username": "sf-refresh"}}
    config = write_config(tmp_path / "sync.yaml", org, objects=["Account"], auth=auth)
    db = tmp_path / "roi.duckdb"
    memory_keyring.set_password("training-roi", "sf-secret", SECRET)
    with pytest.raises(SyncConfigError) as missing:
        run(config, db)
    assert "training-roi/sf-refresh" in str(missing.value) and SECRET not in str(missing.value)
    memory_keyring.set_password("training-roi", "sf-refresh", REFRESH)
    info = run(config, db)
    assert info.ok, info
    accounts = list(csv.DictReader((exports / "crm" / "Account.csv").open(encoding="utf-8")))
    assert count(db, "SELECT count(*) AS n FROM crm_account")[0]["n"] == len(accounts)


def _salesforce(**settings: Any) -> dict[str, Any]:
    return {"name": "sf", "kind": "salesforce", "instance_url": "https://example.my.salesforce.com",
            "auth": {"client_id": "3MVG-consumer-key", "refresh_token_env": "SF_REFRESH_TOKEN"}, **settings}


@pytest.mark.parametrize(("change", "field"), [
    ({"objects": ["Opportunity", "Invoice__c"]}, "sources[0].objects"),
    ({"page_size": 100}, "sources[0].page_size"),
    ({"page_size": 5000}, "sources[0].page_size"),
    ({"limit_share": 1.5}, "sources[0].limit_share"),
    ({"api_version": "v62"}, "sources[0].api_version"),
    ({"instance_url": "example.my.salesforce.com"}, "sources[0].instance_url"),
    ({"auth": {"grant": "password", "client_id": "x"}}, "sources[0].auth.grant"),
    ({"auth": {"client_id": "x"}}, "sources[0].auth.refresh_token"),
    ({"auth": {"grant": "client_credentials", "client_id": "x"}}, "sources[0].auth.client_secret"),
])
def test_each_mistake_in_a_salesforce_source_names_its_field(tmp_path: Path, change: dict[str, Any], field: str):
    caught = crm.config_source(tmp_path, _salesforce(**change))
    assert isinstance(caught, SyncConfigError) and f"{field}:" in str(caught)


def test_a_salesforce_source_defaults_to_every_object_of_the_contract(tmp_path: Path):
    source = crm.config_source(tmp_path, _salesforce())
    assert isinstance(source, SalesforceConfig)
    assert set(source.objects) == {spec.files[0].removeprefix("crm/").removesuffix(".csv")
                                   for spec in SOURCES.values() if spec.files[0].startswith("crm/")}
    assert source.auth.grant == "refresh_token" and source.limit_share == 0.8
